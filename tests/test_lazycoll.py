"""The parse cache's collections build objects as they are asked for (store/lazycoll.py): every
dict operation answers as the fully built dict would, an object is built once, a change to an
object handed out one at a time is saved, and a damaged row falls back to the file."""

from __future__ import annotations

import copy
import marshal

import pytest

from msi_cli.core import lookup
from msi_cli.core.model import State
from msi_cli.store import cachefile, chunks, rows
from msi_cli.store.chunks import Chunked
from msi_cli.store.lazycoll import LazyCollection
from msi_cli.store.statefile import StateFile



@pytest.fixture
def seeded(isolated_state, seed_state) -> StateFile:
    seed_state(60)
    sf = StateFile(isolated_state)
    sf.read()  # the parse cache
    return sf


def _full(sf: StateFile, coll: str) -> dict:
    return rows.collection_objects(coll, Chunked(sf._decode(sf.path.read_bytes())[0].blob(coll)).rows())


def test_a_lookup_builds_one_object(seeded):
    state = seeded.read()
    resources = state.resources
    assert isinstance(resources, LazyCollection)
    key = next(iter(_full(seeded, "resources")))
    r = resources[key]
    assert resources.built() == {key: r}
    assert resources.get(key) is r and key in resources and "/nope" not in resources and resources.get("/nope") is None
    with pytest.raises(KeyError):
        resources["/nope"]
    assert len(resources) == 60 and resources.built() == {key: r}  # len needs no object


def test_every_operation_answers_as_the_whole_dict(seeded):
    full = _full(seeded, "resources")
    ops = [
        lambda d: list(d), lambda d: list(d.keys()), lambda d: [repr(v) for v in d.values()],
        lambda d: [(k, repr(v)) for k, v in d.items()], lambda d: len(d), lambda d: bool(d),
        lambda d: sorted(d)[:3], lambda d: list(reversed(d))[:2], lambda d: repr(dict(d))[:500],
        lambda d: d == full, lambda d: d != {}, lambda d: repr(d)[:300], lambda d: list(d.copy()),
        lambda d: list(d | {}), lambda d: [repr(o) for o in d.matching("name", "res7")],
        lambda d: repr(copy.copy(d))[:300],
    ]
    for op in ops:
        lazy = seeded.read().resources
        some = next(iter(full))
        _ = lazy.get(some)  # one built first: the whole keeps it, and the order
        plain = dict(full)
        want = op(plain) if op is not ops[14] else [repr(o) for o in full.values() if o.name.lower() == "res7"]
        assert op(lazy) == want


def test_matching_builds_only_the_matches_and_whole_keeps_them(seeded):
    state = seeded.read()
    found = lookup.named(state.resources, "res7")
    assert [r.name for r in found] == ["res7"]
    assert list(state.resources.built().values()) == found
    assert state.resources[found[0].id.lower()] is found[0]
    assert any(v is found[0] for v in state.resources.values())  # building the rest kept it
    assert state.resources.built() is None
    assert [i.name for i in lookup.named(state.identities, "shared-0")] == ["shared-0"]
    assert lookup.user_identity(state, "SHARED-0").name == "shared-0"


def test_a_change_to_an_object_handed_out_alone_is_saved(seeded):
    before = seeded.path.read_bytes()
    with seeded.transaction() as ctx:
        r = lookup.resource(ctx.state, "res4")
        r.location = "westeurope"
        assert ctx.state.resources.built() is not None  # never built whole
    after = seeded.path.read_bytes()
    assert after != before and after.count(b'location = "westeurope"') == 1
    again = seeded.read()
    assert lookup.resource(again, "res4").location == "westeurope"
    assert lookup.resource(again, "res5").location == lookup.resource(StateFile(seeded.path).read(), "res5").location
    assert StateFile(seeded.path).read() == seeded._parse(after)


def test_a_deleted_object_is_saved(seeded):
    with seeded.transaction() as ctx:
        storage = lookup.resource(ctx.state, "res2")  # a storage account: no identity
        ctx.state.resources.pop(storage.id.lower())
        assert ctx.state.resources.removed() == {storage.id.lower(): 2}  # left out, the others not built
    saved = seeded._parse(seeded.path.read_bytes())
    assert storage.id.lower() not in saved.resources and len(saved.resources) == 59
    assert b'name = "res2"' not in seeded.path.read_bytes()


@pytest.mark.parametrize("damage", ["row", "table", "nested"])
def test_damaged_rows_fall_back_to_the_file(seeded, damage):
    sf = seeded
    state = sf.read()
    truth = sf._parse(sf.path.read_bytes())
    cached = Chunked(state.blob("resources"))
    table, ends = list(cached.rows()), cached.ends()
    good = marshal.loads(chunks.dumps(table, ends, 0))
    if damage == "row":
        table[3] = (table[3][0], (1, 2))
    elif damage == "table":
        table[5] = 42
    else:
        row = list(table[1][1])
        row[-1] = 7  # user_assigned is not a list of rows
        table[1] = (table[1][0], tuple(row))
    damaged = [marshal.dumps(table[i:i + chunks.CHUNK]) for i in range(0, len(table), chunks.CHUNK)]
    state._blobs["resources"] = marshal.dumps((*good[:4], damaged))
    names = sorted(r.name for r in state.resources.values())
    assert names == sorted(r.name for r in truth.resources.values())
    assert state.resources == truth.resources



def test_columns_read_rows_and_handed_out_objects(seeded):
    state = seeded.read()
    full = _full(seeded, "resources")
    key = next(iter(full))
    state.resources[key].location = "westeurope"  # handed out, then changed
    got = state.resources.columns("location", "system_principal_id")
    assert got == [(k, "westeurope" if k == key else r.location, r.system_principal_id) for k, r in full.items()]
    assert state.resources.built() == {key: state.resources[key]}


def test_a_broken_link_through_an_object_handed_out_alone_is_refused(seeded):
    from msi_cli.errors import StateError

    before = seeded.path.read_bytes()
    with pytest.raises(StateError, match="held by two resources"):
        with seeded.transaction() as ctx:
            vm0, vm3 = lookup.resource(ctx.state, "res0"), lookup.resource(ctx.state, "res3")
            vm3.system_principal_id = vm0.system_principal_id
    with pytest.raises(StateError, match="belongs to no resource"):
        with seeded.transaction() as ctx:
            lookup.resource(ctx.state, "res3").system_principal_id = None
    assert seeded.path.read_bytes() == before


def test_a_name_lookup_reads_one_chunk(monkeypatch, isolated_state, seed_state):
    seed_state(700)  # three chunks of resources
    sf = StateFile(isolated_state)
    sf.read()
    state = sf.read()
    found = lookup.named(state.resources, "res650")
    table = state._tables["resources"]
    assert [r.name for r in found] == ["res650"] and table._rows is None and list(table._chunks) == [2]
    assert not isinstance(table._keys, list)  # no key was looked up: the keys were never read
    assert state.resources[found[0].id.lower()] is found[0]


@pytest.mark.parametrize("part", ["keys", "names", "chunk"])
def test_a_damaged_part_falls_back_to_the_file(isolated_state, part, seed_state):
    seed_state(300)
    sf = StateFile(isolated_state)
    sf.read()
    state = sf.read()
    truth = sf._parse(sf.path.read_bytes())
    count, keys, names, ends, parts = marshal.loads(state.blob("resources"))
    if part == "keys":
        keys = keys[:-7]
    elif part == "names":
        names = marshal.dumps(["x"])
    else:
        parts[1] = parts[1][:40]
    state._blobs["resources"] = marshal.dumps((count, keys, names, ends, parts))
    assert [r.name for r in lookup.named(state.resources, "res290")] == ["res290"]
    assert state.resources == truth.resources


def test_a_save_keeps_the_chunks_it_did_not_change(isolated_state, seed_state):
    seed_state(700)
    sf = StateFile(isolated_state)
    sf.read()
    before = marshal.loads(sf.read().blob("resources"))
    with sf.transaction() as ctx:
        lookup.resource(ctx.state, "res650").location = "westeurope"
    state = sf.read()
    after = marshal.loads(state.blob("resources"))
    assert after[0] == before[0] and after[1] == before[1] and after[2] == before[2]  # count, keys, names
    assert [a == b for a, b in zip(after[4], before[4])] == [True, True, False]
    assert Chunked(state.blob("resources")).rows() == chunks.Chunked(chunks.dumps(
        rows.collection_rows("resources", sf._parse(sf.path.read_bytes()).resources), None, 0)).rows()


@pytest.mark.parametrize("where", ["head", "resources", "identities"])
def test_a_damaged_byte_in_the_cache_file_is_found_by_its_crc(isolated_state, where, seed_state):
    seed_state(300)
    sf = StateFile(isolated_state)
    truth = sf._parse(sf.path.read_bytes())
    sf.read()
    raw = bytearray(sf.cache_path.read_bytes())
    if where == "head":
        at = 20
    else:
        part = cachefile.loads(bytes(raw))["colls"][where][2].chunks[0]
        at = part._view.obj.index(bytes(part._view)) + len(part._view) // 2  # inside that collection's first chunk of rows
    raw[at] ^= 0x01
    sf.cache_path.write_bytes(bytes(raw))
    state = sf.read()
    assert state.resources == truth.resources and state.identities == truth.identities
    with sf.transaction() as ctx:  # a save after it writes a sound cache again
        lookup.resource(ctx.state, "res5").location = "westeurope"
    assert cachefile.loads(sf.cache_path.read_bytes()) is not None
    assert lookup.resource(sf.read(), "res5").location == "westeurope"


def test_a_change_that_moves_no_system_identity_reads_no_other_resource(seeded, monkeypatch):
    calls = []
    real = LazyCollection.columns
    monkeypatch.setattr(LazyCollection, "columns", lambda self, *names: calls.append(names) or real(self, *names))
    with seeded.transaction() as ctx:
        lookup.resource(ctx.state, "res4").location = "westeurope"
    assert calls == []  # its system-assigned identity is the one it held: nothing can clash
    with seeded.transaction() as ctx:  # one that does move is checked against every other
        vm0, vm3 = lookup.resource(ctx.state, "res0"), lookup.resource(ctx.state, "res3")
        vm0.system_principal_id, vm3.system_principal_id = vm3.system_principal_id, vm0.system_principal_id
    assert ("system_principal_id",) in calls


def test_an_object_added_comes_last_without_building_the_others(seeded):
    from msi_cli.core.model import Resource

    state = seeded.read()
    resources = state.resources
    new = Resource("added1", "storage", "sub", "rg0", "eastus", "2026-01-01T00:00:00Z")
    resources["/x/added1"] = new
    assert resources.built() == {"/x/added1": new} and resources.added() == ["/x/added1"]
    assert len(resources) == 61 and "/x/added1" in resources and resources.get("/x/added1") is new
    assert [o.name for o in resources.matching("name", "added1")] == ["added1"]
    assert resources.columns("name")[-1] == ("/x/added1", "added1") and len(resources.columns("name")) == 61
    assert resources.position("/x/added1") == 60
    assert list(resources)[-1] == "/x/added1" and len(list(resources)) == 61  # the whole, in order


def test_an_identity_created_at_scale_is_saved_without_building_every_identity(seeded):
    from msi_cli.core import lifecycle

    with seeded.transaction() as ctx:
        made = lifecycle.create_identity(ctx, "fresh-id", "rg1", None, None)
        assert ctx.state.identities.built() is not None  # never built whole
    saved = seeded._parse(seeded.path.read_bytes())
    assert saved.identities[made.principal_id].name == "fresh-id" and made.principal_id in saved.principals
    assert list(saved.identities)[-1] == made.principal_id
    assert lookup.user_identity(seeded.read(), "fresh-id").principal_id == made.principal_id


def _from_scratch(sf: StateFile, parsed: State | None = None) -> bytes:
    """The state file as a save that reuses nothing writes it (`parsed`: the file, parsed already)."""
    return sf._encode(parsed if parsed is not None else sf._parse(sf.path.read_bytes()), b"", {})[0]


def test_a_patched_save_writes_what_a_whole_save_writes(isolated_state, seed_state):
    from msi_cli.core import lifecycle
    from msi_cli.store import patch

    seed_state(700)
    sf = StateFile(isolated_state)
    sf.read()
    calls = []
    real = patch.patch
    def spy(*args, **kwargs):
        done = real(*args, **kwargs)
        calls.append((args[0], done is not None))
        return done

    patch.patch = spy
    try:
        for step in range(3):
            with sf.transaction() as ctx:
                lookup.resource(ctx.state, f"res{600 + step}").location = "westeurope" + "x" * step  # longer and shorter texts
                lookup.resource(ctx.state, f"res{5 + step}").location = "ab"
                lifecycle.create_identity(ctx, f"added-{step}", "rg1", None, None)
                lifecycle.create_resource(ctx, f"newvm{step}", "vm", "rg1", None, None, system_assigned=True)
            parsed = sf._parse(sf.path.read_bytes())  # once: a pure-Python parse of 700 resources
            truth = rows.collection_rows("resources", parsed.resources)
            assert sf.path.read_bytes() == _from_scratch(sf, parsed)
            cached = Chunked(sf.read().blob("resources"))
            assert cached.rows() == truth
    finally:
        patch.patch = real
    assert ("resources", True) in calls and ("identities", True) in calls
    state = sf.read()
    assert [r.location for r in lookup.named(state.resources, "res602")] == ["westeuropexx"]
    assert len(state.resources) == 703 and lookup.resource(state, "newvm2").system_principal_id in state.identities


@pytest.mark.parametrize("break_it, message", [
    ("twin", "two user-assigned identities share the id"),
    ("orphan", "belongs to no resource"),
    ("stranger", "has no matching identity"),
    ("shared", "is held by two resources"),
    ("no-principal", "has no service principal"),
])
def test_links_broken_by_added_records_are_refused_without_a_scan(seeded, break_it, message):
    from msi_cli.core import lifecycle
    from msi_cli.core.model import Identity, Resource, ServicePrincipal
    from msi_cli.errors import StateError

    before = seeded.path.read_bytes()
    with pytest.raises(StateError, match=message):
        with seeded.transaction() as ctx:
            state = ctx.state
            made = lifecycle.create_identity(ctx, "extra", "rg1", None, None)
            if break_it == "twin":
                twin = Identity("0" * 8 + "-0000-4000-8000-" + "0" * 12, "1" * 8 + "-0000-4000-8000-" + "1" * 12, made.tenant_id,
                                made.kind, made.name, made.resource_id, made.location, made.created)
                state.identities[twin.principal_id] = twin
                sp = state.principals[made.principal_id]
                state.principals[twin.principal_id] = ServicePrincipal(twin.principal_id, twin.client_id, sp.tenant_id, sp.display_name, [])
            elif break_it == "orphan":
                state.identities[made.principal_id].kind = "SystemAssigned"
            elif break_it == "stranger":
                state.principals[made.principal_id].app_id = "2" * 8 + "-0000-4000-8000-" + "2" * 12
            elif break_it == "shared":
                vm0 = lookup.resource(state, "res0")
                clone = Resource("res0b", "vm", vm0.subscription_id, vm0.resource_group, vm0.location, vm0.created, vm0.system_principal_id)
                state.resources[clone.id.lower()] = clone
            else:
                dict.pop(state.principals, made.principal_id)  # as if its principal had never been made
                state.principals._new.pop(made.principal_id)
            assert state.identities.built() is not None and state.resources.built() is not None
    assert seeded.path.read_bytes() == before


def test_columns_of_a_whole_collection_match_its_rows(seeded):
    state = seeded.read()
    resources = state.resources.whole()
    full = rows.collection_rows("resources", dict(resources.items()))
    from msi_cli.core.datatype import fields
    from msi_cli.core.model import Resource

    names = ("name", "system_principal_id", "user_assigned")
    at = [fields(Resource).index(n) for n in names]
    assert resources.columns("name") == [(k, r[at[0]]) for k, r in full]
    assert resources.columns("name", "system_principal_id") == [(k, r[at[0]], r[at[1]]) for k, r in full]
    assert resources.columns(*names) == [(k, *[r[i] for i in at]) for k, r in full]


def test_a_state_shared_by_the_server_is_whole_before_it_is_shared(seeded):
    from msi_cli.server.live import LiveState

    live = LiveState(seeded)
    live.refresh()
    for coll in ("resources", "identities", "principals", "tenants"):
        objects = getattr(live.current, coll)
        assert not isinstance(objects, LazyCollection) or objects.built() is None  # whole: plain dict reads only


def test_a_save_that_read_some_principals_keeps_a_summary_no_later_than_the_true_one(seeded):
    """The certificate summary saved beside a state whose principals were read one by one is the
    lower of the old one and theirs: never later than the true one, so roll_due's fast path never
    skips a certificate that is due."""
    from msi_cli.core.credentials import roll_summary
    from msi_cli.core.model import KeyCredential
    from msi_cli.store import cachefile as cf

    with seeded.transaction() as ctx:
        principals = ctx.state.principals
        key = next(iter(_full(seeded, "principals")))
        sp = principals[key]
        sp.key_credentials.append(KeyCredential("00000000-0000-0000-0000-000000000001", sp.key_credentials[0].thumbprint,
                                                "2001-01-01T00:00:00Z", "2001-03-01T00:00:00Z"))
        sp.key_credentials.sort(key=lambda c: c.start)
        assert principals.built() is not None
    saved = cf.loads(seeded.cache_path.read_bytes())["roll_summary"]
    exact = roll_summary(_full(seeded, "principals").values())
    assert saved[0] <= exact[0] and saved[1] <= exact[1]
    assert saved[1] == "2001-03-01T00:00:00Z"  # the changed principal's first certificate ends first


def test_a_lookup_reads_the_cache_head_and_the_parts_it_uses(isolated_state, monkeypatch, seed_state):
    """The cache file is read a piece at a time: a lookup of one resource of 1,000 by name reads
    the head, the resources' names and the one chunk of rows that holds it; nothing of the other
    collections' (principals, role assignments)."""
    seed_state(1000)
    sf = StateFile(isolated_state)
    sf.read()
    key = next(k for k, r in _full(sf, "resources").items() if r.name == "res500")
    read: list[int] = []
    real = cachefile.Source.read
    monkeypatch.setattr(cachefile.Source, "read", lambda self, at, length: read.append(length) or real(self, at, length))
    state = sf.read()
    assert [r.id.lower() for r in lookup.named(state.resources, "res500")] == [key]
    colls = cachefile.loads(sf.cache_path.read_bytes())["colls"]
    resources = colls["resources"][2]
    assert len(resources.chunks) == 4
    expected = [len(resources.names.view()), len(resources.chunks[500 // chunks.CHUNK].view())]
    assert read[-2:] == expected and sum(read) < sum(len(p.view()) for p in resources.pieces()) / 2, (read, expected)


def test_a_cache_replaced_while_read_keeps_answering_from_the_file_it_opened(seeded):
    state = seeded.read()
    key = next(iter(_full(seeded, "resources")))
    old = seeded.cache_path.read_bytes()
    seeded.cache_path.unlink()
    seeded.cache_path.write_bytes(b"msi\x02" + b"\x00" * 64)  # replaced, as a writer replaces it
    assert state.resources[key].id.lower() == key  # read from the file this state opened
    assert len(old) > 64


def test_a_cache_file_cut_short_is_not_trusted(seeded):
    data = seeded.cache_path.read_bytes()
    expected = {k: v.location for k, v in seeded.read().resources.items()}
    seeded.cache_path.write_bytes(data[: len(data) // 2])
    assert {k: v.location for k, v in seeded.read().resources.items()} == expected



def test_a_deletion_answers_as_the_whole_dict_would(seeded):
    """Deleting without building the others: every dict operation answers as on the full dict."""
    state = seeded.read()
    full = dict(_full(seeded, "resources"))
    lazy = state.resources
    keys = list(full)
    for key in (keys[3], keys[40], keys[0]):
        obj = lazy.pop(key)
        assert obj == full.pop(key)
        assert key not in lazy and lazy.get(key) is None
        with pytest.raises(KeyError):
            del lazy[key]
    assert lazy.pop(keys[3], "gone") == "gone"
    assert len(lazy) == len(full) and lazy.removed() and lazy.built() is not None
    assert lazy.matching("name", full[keys[5]].name.lower()) == [full[keys[5]]]
    assert lazy.matching("name", "res3") == [o for o in full.values() if o.name == "res3"]
    assert lazy.columns("name") == [(k, o.name) for k, o in full.items()]
    assert lazy.position(keys[41]) == list(full).index(keys[41])
    lazy[keys[40]] = obj = _full(seeded, "resources")[keys[40]]  # back, under the same key: it comes last
    full[keys[40]] = obj
    assert list(lazy) == list(full) and lazy == full


@pytest.mark.parametrize("where", ["first", "middle", "last", "several"])
def test_a_save_that_deleted_records_writes_what_a_whole_save_writes(isolated_state, where, seed_state):
    from msi_cli.core import lifecycle

    seed_state(700)
    sf = StateFile(isolated_state)
    sf.read()
    names = {"first": ["res0"], "middle": ["res300"], "last": ["res699"], "several": ["res10", "res260", "res500", "res698"]}[where]
    with sf.transaction() as ctx:
        lookup.resource(ctx.state, "res100").location = "westeurope"  # an edit before the deletions
        for name in names:
            lifecycle.delete(ctx, lookup.resource(ctx.state, name))
        lifecycle.create_resource(ctx, "newvm", "vm", "rg1", None, None, system_assigned=True)
        for coll in ("resources", "identities", "principals"):
            objects = getattr(ctx.state, coll)
            assert isinstance(objects, LazyCollection) and objects.built() is not None  # never built whole
    parsed = sf._parse(sf.path.read_bytes())  # once: a pure-Python parse of 700 resources
    truth = rows.collection_rows("resources", parsed.resources)
    assert sf.path.read_bytes() == _from_scratch(sf, parsed)
    state = sf.read()
    assert rows.collection_rows("resources", state.resources) == truth
    assert Chunked(state.blob("resources")).rows() == truth
    assert all(not lookup.named(state.resources, n) for n in names) and len(state.resources) == 700 - len(names) + 1
    assert lookup.resource(state, "res100").location == "westeurope"


@pytest.mark.parametrize("found", ["by name", "by scanning"])
def test_a_deleted_identity_still_held_by_a_resource_is_refused(seeded, found):
    """The links of what was deleted are checked: a system-assigned identity deleted behind its
    resource's back (not through lifecycle.delete) leaves a resource naming a missing identity."""
    from msi_cli.errors import StateError

    before = seeded.path.read_bytes()
    with pytest.raises(StateError, match="missing system-assigned identity"):
        with seeded.transaction() as ctx:
            if found == "by name":  # the resources are not built: only their rows are read for the check
                held = lookup.resource(ctx.state, "res0")
            else:
                held = next(r for r in ctx.state.resources.values() if r.system_principal_id)
            assert held.system_principal_id
            ctx.state.principals.pop(held.system_principal_id)
            del ctx.state.identities[held.system_principal_id]
    assert seeded.path.read_bytes() == before


def test_a_resource_deleted_without_its_system_identity_is_refused(seeded):
    from msi_cli.errors import StateError

    before = seeded.path.read_bytes()
    with pytest.raises(StateError, match="belongs to no resource"):
        with seeded.transaction() as ctx:
            vm = lookup.resource(ctx.state, "res0")
            assert vm.system_principal_id
            del ctx.state.resources[vm.id.lower()]
    assert seeded.path.read_bytes() == before


def test_mentioning_finds_exactly_what_a_scan_of_every_object_finds(seeded):
    """The prefilter for a search by a nested value: the same objects, in the same order, as
    testing every row, with handed-out changes, deletions and additions counted."""
    from msi_cli.store.lazycoll import _holds

    state = seeded.read()
    full = dict(_full(seeded, "resources"))
    row = rows.row_of(type(next(iter(full.values()))))
    shared = next(r for r in full.values() if r.user_assigned).user_assigned[0].principal_id
    lazy = state.resources
    keys = list(full)
    moved = lazy[keys[7]]  # handed out, and changed to mention it
    moved.location = shared
    full[keys[7]].location = shared
    holder = next(k for k, r in full.items() if r.user_assigned and r.user_assigned[0].principal_id == shared)
    del lazy[holder]
    del full[holder]
    for value in (shared, "eastus", "no-such-value", keys[3], shared[:8]):
        expected = [o for o in full.values() if _holds(row(o), value)]
        assert lazy.mentioning(value) == expected, value
    assert lazy.built() is not None  # not built whole


def test_deleting_a_user_assigned_identity_reads_no_resource_that_does_not_mention_it(isolated_state, seed_state):
    from msi_cli.core import lifecycle

    seed_state(700)
    sf = StateFile(isolated_state)
    sf.read()
    with sf.transaction() as ctx:
        shared = lookup.user_identity(ctx.state, "shared-0")
        result = lifecycle.delete(ctx, shared)
        resources = ctx.state.resources
        assert resources.built() is not None and len(dict.keys(resources)) < 100
    holders = [r.id for r in sf._parse(sf.path.read_bytes()).resources.values() if any(u.principal_id == shared.principal_id for u in r.user_assigned)]
    assert result["stillReferencedBy"] == holders and holders


@pytest.mark.parametrize("left", ["principal", "identity"])
def test_an_identity_or_principal_deleted_without_the_other_is_refused(seeded, left):
    from msi_cli.errors import StateError

    before = seeded.path.read_bytes()
    match = "has no matching identity" if left == "principal" else "has no service principal"
    with pytest.raises(StateError, match=match):
        with seeded.transaction() as ctx:
            pid = lookup.user_identity(ctx.state, "shared-0").principal_id
            if left == "principal":
                del ctx.state.identities[pid]
            else:
                del ctx.state.principals[pid]
            assert ctx.state.identities.built() is not None and ctx.state.principals.built() is not None
    assert seeded.path.read_bytes() == before


def _patched_colls(monkeypatch) -> list[str]:
    """The collections a save edits in place (store/patch.py), recorded as they are saved."""
    from msi_cli.store import encode, patch

    done: list[str] = []
    real = patch.patch

    def recording(coll, *args, **kwargs):
        result = real(coll, *args, **kwargs)
        if result is not None:
            done.append(coll)
        return result

    monkeypatch.setattr(patch, "patch", recording)
    assert encode.patch is patch
    return done


@pytest.mark.parametrize("coll", ["identities", "principals", "resources"])
def test_a_record_deleted_and_set_again_in_one_save_is_checked_as_it_now_is(seeded, monkeypatch, coll):
    """Deleted and set again under the same key: the save edits it in place (it comes last), and
    its links are checked as those of a record that is there, not of one removed."""
    patched = _patched_colls(monkeypatch)
    with seeded.transaction() as ctx:
        vm = lookup.resource(ctx.state, "res0")
        key = vm.id.lower() if coll == "resources" else vm.system_principal_id
        objects = getattr(ctx.state, coll)
        objects[key] = objects.pop(key)
    assert coll in patched
    assert seeded.path.read_bytes() == _from_scratch(seeded)
    assert lookup.resource(seeded.read(), "res0").system_principal_id == vm.system_principal_id


@pytest.mark.parametrize("change", ["holds another's identity", "unknown tenant"])
def test_a_record_set_again_with_broken_links_is_refused(seeded, monkeypatch, change):
    from msi_cli.errors import StateError

    before = seeded.path.read_bytes()
    patched = _patched_colls(monkeypatch)
    with pytest.raises(StateError, match="held by two resources" if change == "holds another's identity" else "unknown tenant"):
        with seeded.transaction() as ctx:
            if change == "holds another's identity":
                storage = lookup.resource(ctx.state, "res2")  # no identity of its own
                assert storage.system_principal_id is None
                other = lookup.resource(ctx.state, "res3").system_principal_id
                again = copy.deepcopy(ctx.state.resources.pop(storage.id.lower()))
                again.system_principal_id = other
                ctx.state.resources[storage.id.lower()] = again
            else:
                pid = lookup.resource(ctx.state, "res0").system_principal_id
                again = copy.deepcopy(ctx.state.identities.pop(pid))
                again.tenant_id = "00000000-0000-0000-0000-000000000000"
                ctx.state.identities[pid] = again
    assert patched and seeded.path.read_bytes() == before


@pytest.mark.parametrize("whole", ["principals", "identities"])
def test_a_resource_deleted_without_its_identity_is_refused_when_the_others_were_read_whole(seeded, whole):
    """A transaction that read every principal (as a certificate roll does) and then deleted a
    resource, leaving its system-assigned identity: still refused."""
    from msi_cli.errors import StateError

    before = seeded.path.read_bytes()
    with pytest.raises(StateError, match="belongs to no resource"):
        with seeded.transaction() as ctx:
            list(getattr(ctx.state, whole).values())
            vm = lookup.resource(ctx.state, "res0")
            assert vm.system_principal_id
            del ctx.state.resources[vm.id.lower()]
    assert seeded.path.read_bytes() == before


def test_matching_sees_the_objects_handed_out_as_they_are_now(seeded):
    """An object handed out and renamed, or replaced under its key, is matched by its name now,
    not by the one the cache kept."""
    state = seeded.read()
    lazy = state.resources
    full = dict(_full(seeded, "resources"))
    keys = list(full)
    lazy[keys[7]].name = full[keys[7]].name = "renamed"
    other = copy.deepcopy(full[keys[9]])
    other.name = "also-renamed"
    lazy[keys[2]] = full[keys[2]] = other
    for name in ("renamed", "also-renamed", "res2", "res7", "res9"):
        assert lazy.matching("name", name) == [o for o in full.values() if o.name == name], name
        assert lazy.matching("location", "eastus") == [o for o in full.values() if o.location == "eastus"]
    assert lazy.built() is not None


@pytest.mark.parametrize("change", [None, "a field", "deleted and put back", "one added", "one deleted"])
def test_a_whole_collection_knows_whether_anything_changed(seeded, change):
    resources = seeded.read().resources
    assert isinstance(resources, LazyCollection)
    key = next(iter(resources))  # iterating builds it whole
    assert resources.built() is None and resources.unchanged()
    if change == "a field":
        resources[key].location = "westeurope"
    elif change == "deleted and put back":  # the same object, now last
        resources[key] = resources.pop(key)
    elif change == "one added":
        resources["/new"] = resources[key]
    elif change == "one deleted":
        del resources[key]
    assert resources.unchanged() is (change is None)


def test_a_collection_rebuilt_from_the_file_is_not_called_unchanged(seeded):
    resources = seeded.read().resources
    assert isinstance(resources, LazyCollection)
    resources._replace()  # as after a damaged row: the objects are the file's, the cached rows untrusted
    assert list(resources) and not resources.unchanged()
