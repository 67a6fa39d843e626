"""A save reads and rewrites only what the transaction used (store/lazystate.py, statefile.py),
and still refuses every broken link, still rolls every due certificate, and still falls back to
the file when the cache is damaged."""

from __future__ import annotations


import pytest

from msi_cli.core import lifecycle
from msi_cli.core.timefmt import DAY
from msi_cli.errors import StateError
from msi_cli.store import codec
from msi_cli.store.lazystate import LazyState
from msi_cli.store import cachefile
from msi_cli.store.statefile import StateFile


@pytest.fixture
def sf(isolated_state) -> StateFile:
    sf = StateFile(isolated_state)
    with sf.transaction() as ctx:
        shared = lifecycle.create_identity(ctx, "shared", "rg1", None, None)
        for n in range(6):
            lifecycle.create_resource(ctx, f"vm{n}", "vm", "rg1", None, None, system_assigned=n % 2 == 0,
                                      user_assigned=[shared.resource_id] if n % 3 == 0 else [])
    with sf.transaction():
        pass  # the cache now knows where every record's text sits
    return sf


def test_a_read_builds_only_what_it_uses(sf):
    state = sf.read()
    assert isinstance(state, LazyState)
    assert all(state.is_pending(coll) for coll in codec.COLLECTIONS)
    assert len(state.resources) == 6
    assert not state.is_pending("resources") and state.is_pending("principals")
    assert state == codec.load(codec.upgrade(__import__("tomllib").loads(sf.path.read_text())))


def test_a_change_to_one_record_writes_what_a_full_save_writes(sf):
    with sf.transaction() as ctx:
        res = next(r for r in ctx.state.resources.values() if r.name == "vm3")
        lifecycle.unassign(ctx, res, False, [res.user_assigned[0].resource_id])
    assert ctx.state.is_pending("role_assignments")
    written = sf.path.read_bytes()
    state = codec.load(codec.upgrade(__import__("tomllib").loads(written.decode())))
    assert sf._encode(state, b"", {})[0] == written
    assert [u.resource_id for u in sf.read().resources[res.id.lower()].user_assigned] == []


@pytest.mark.parametrize("breakage", ["resource names a missing identity", "identity changed under a resource",
                                      "principal removed", "system identity left without its resource"])
def test_a_partial_save_still_refuses_a_broken_link(sf, breakage):
    before = sf.path.read_bytes()
    with pytest.raises(StateError, match="refusing to save an invalid state"):
        with sf.transaction() as ctx:
            state = ctx.state
            vm0 = next(r for r in state.resources.values() if r.name == "vm0")
            if breakage == "resource names a missing identity":
                vm0.system_principal_id = "0d2b5f7e-1f4b-4bd8-9d1e-000000000001"
            elif breakage == "identity changed under a resource":  # the resource itself is unchanged
                pid = vm0.user_assigned[0].principal_id
                state.identities[pid].client_id = state.principals[pid].app_id = "0d2b5f7e-1f4b-4bd8-9d1e-000000000002"
            elif breakage == "principal removed":
                del state.principals[vm0.system_principal_id]
            else:
                key = next(k for k, r in state.resources.items() if r.name == "vm2")
                del state.resources[key]  # its system-assigned identity stays
    assert sf.path.read_bytes() == before


def test_a_due_certificate_rolls_though_the_principals_were_not_read(sf):
    with sf.transaction() as ctx:  # moves the clock without touching the principals
        ctx.state.clock_offset += 46 * DAY
    assert ctx.state.is_pending("principals")
    with sf.transaction() as ctx:
        pass
    assert all(len(sp.key_credentials) == 2 for sp in sf.read().principals.values())


def test_a_damaged_collection_in_the_cache_falls_back_to_the_file(sf):
    expected = codec.load(codec.upgrade(__import__("tomllib").loads(sf.path.read_text())))
    blob = cachefile.loads(sf.cache_path.read_bytes())
    start, end, _ = blob["colls"]["principals"]
    blob["colls"]["principals"] = (start, end, b"\x00not marshal")
    sf.cache_path.write_bytes(cachefile.dumps(blob))
    state = sf.read()
    assert state.principals == expected.principals and state == expected
    with sf.transaction() as ctx:
        lifecycle.create_identity(ctx, "after", "rg1", None, None)
    state = codec.load(codec.upgrade(__import__("tomllib").loads(sf.path.read_text())))
    assert len(state.principals) == len(expected.principals) + 1


def test_a_transaction_that_changes_nothing_leaves_the_file_unwritten(sf, monkeypatch):
    with sf.transaction():
        pass
    before, st = sf.path.read_bytes(), sf.path.stat()
    monkeypatch.setattr(StateFile, "_encode", lambda *a: pytest.fail("encoded a state in which nothing changed"))
    with sf.transaction() as ctx:
        vm3 = next(r for r in ctx.state.resources.values() if r.name == "vm3")
        assert ctx.state.principals[vm3.user_assigned[0].principal_id].app_id  # objects handed out, read only
        state = ctx.state
    after = sf.path.stat()
    assert sf.path.read_bytes() == before and (after.st_ino, after.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    monkeypatch.undo()
    assert sf._encode(state, before, {})[0] == before  # what a save would have written


@pytest.mark.parametrize("change", ["a field of a record read", "the clock", "a record added", "the state replaced"])
def test_a_transaction_that_changes_anything_saves_it(sf, change):
    with sf.transaction():
        pass
    before = sf.path.read_bytes()
    with sf.transaction() as ctx:
        vm3 = next(r for r in ctx.state.resources.values() if r.name == "vm3")
        if change == "a field of a record read":
            vm3.location = "westeurope"
        elif change == "the clock":
            ctx.state.clock_offset += 60
        elif change == "a record added":
            lifecycle.create_identity(ctx, "another", "rg1", None, None)
        else:
            ctx.state = codec.load(codec.upgrade(__import__("tomllib").loads(before.decode())))
            next(r for r in ctx.state.resources.values() if r.name == "vm3").location = "westeurope"
    written = sf.path.read_bytes()
    assert written != before
    assert written == sf._encode(codec.load(codec.upgrade(__import__("tomllib").loads(written.decode()))), b"", {})[0]


def test_after_a_hand_edit_that_needs_no_rewrite_the_cache_learns_where_records_sit(sf, monkeypatch):
    with sf.transaction():
        pass
    head, _, rest = sf.path.read_text().partition("[[resources]]")
    sf.path.write_text(head + "[[resources]]" + rest.replace('location = "eastus"', 'location = "westus"', 1))  # as msi writes it
    edited = sf.path.read_bytes()
    with sf.transaction():  # parses the edited file: nothing to rewrite
        pass
    assert sf.path.read_bytes() == edited
    monkeypatch.setattr(StateFile, "_encode", lambda *a: pytest.fail("encoded again a state in which nothing changed"))
    with sf.transaction() as ctx:
        assert "westus" in {r.location for r in ctx.state.resources.values()}
    assert sf.path.read_bytes() == edited
