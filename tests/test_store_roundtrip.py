"""The state file's format is fixed by its content: the same state always gives the same bytes,
whether it is written record by record from the parse cache or from scratch, and reading a file
and writing it back changes nothing."""

from __future__ import annotations

import tomllib

import tomli_w

from msi_cli.store import codec
from msi_cli.store.statefile import StateFile


def sample(cli) -> None:
    """A state with a record of every collection, optional fields set and unset, and nesting."""
    cli.ok("create-tenant", "Fabrikam", "-o", "none")
    cli.ok("create-subscription", "other-sub", "--tenant", "Fabrikam", "-o", "none")
    cli.ok("create-identity", "ci-id", "-g", "rg1", "-o", "none")
    cli.ok("create-identity", "gone-id", "-g", "rg1", "-o", "none")
    cli.ok("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--system-assigned", "--user-assigned", "ci-id", "-o", "none")
    cli.ok("create-resource", "app1", "--type", "webapp", "-g", "rg2", "--user-assigned", "gone-id", "-o", "none")
    cli.ok("create-resource", "store1", "--type", "storage", "-g", "rg2", "-o", "none")
    cli.ok("delete", "gone-id", "--yes", "-o", "none")  # soft-deleted principal, dangling user entry
    cli.ok("grant", "vm1", "--role", "Reader", "--scope", "store1", "-o", "none")
    cli.ok("federation", "add", "ci-id", "--name", "main", "--issuer", "https://token.actions.githubusercontent.com",
           "--subject", "repo:o/r:ref:refs/heads/main", "-o", "none")
    cli.ok("issuer", "create", "gh", "--kind", "github", "-o", "none")


def from_scratch(sf: StateFile) -> bytes:
    """The file's bytes as a save with no cache at all would write them."""
    state = codec.load(codec.upgrade(tomllib.loads(sf.path.read_text("utf-8"))))
    data, _, _ = sf._encode(state, b"", {})
    return data


def test_a_state_round_trips_to_identical_bytes(cli, isolated_state):
    sample(cli)
    sf = StateFile(isolated_state)
    written = isolated_state.read_bytes()
    state = sf.read()
    assert all(getattr(state, coll) for coll in codec.COLLECTIONS), "the sample misses a collection"
    # written record by record (through the cache of earlier saves) == written from scratch
    assert from_scratch(sf) == written
    # the document level: load then dump gives back what TOML read
    doc = tomllib.loads(written.decode("utf-8"))
    assert codec.dump(codec.load(codec.upgrade(dict(doc)))) == doc
    # a transaction that changes nothing leaves the file as it was, cache or not
    with sf.transaction():
        pass
    assert isolated_state.read_bytes() == written
    sf.cache_path.unlink()
    with sf.transaction():
        pass
    assert isolated_state.read_bytes() == written


def test_the_file_is_the_header_then_one_table_per_record(cli, isolated_state):
    """The layout a person reads and edits: TOML's own rendering of the header, then each
    record as its own `[[collection]]` table, in the collections' order."""
    sample(cli)
    state = StateFile(isolated_state).read()
    parts = [tomli_w.dumps(codec.header(state))]
    for coll, recs in codec.records(state).items():
        parts.extend("\n" + tomli_w.dumps({coll: [rec]}) for _, rec in recs)
    assert "".join(parts).encode("utf-8") == isolated_state.read_bytes()


def test_rows_round_trip_to_the_same_state(cli, isolated_state):
    sample(cli)
    state = StateFile(isolated_state).read()
    assert codec.from_rows(codec.header(state), codec.rows(state)) == state


def test_a_flag_is_written_only_when_true_and_reads_back_as_it_was_meant() -> None:
    """`location_guessed` is true or absent in the file; a falsy value in memory (the type allows
    only True and None, but nothing stops a caller at run time) is left out, not written as false,
    which the reader refuses."""
    from msi_cli.core.model import Identity
    from msi_cli.store import records

    rid = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x-id"
    for flag, back in ((True, True), (None, None), (False, None)):
        made = Identity("00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b",
                        "00000000-0000-4000-8000-00000000000c", "UserAssigned", "x-id", rid, "eastus", "2026-01-01T00:00:00Z",
                        flag)  # type: ignore[arg-type]  # False, on purpose
        rec = records.to_record(made)
        assert ("location_guessed" in rec) is (back is True)
        assert records.check_record("identities", rec, 0).location_guessed is back
