"""The TOML store: errors that name the file and line and leave it untouched, permissions, the
parse cache, atomic writes, the upgrade chain and transactions."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from msi_cli.core import lifecycle
from msi_cli.core.model import SCHEMA_VERSION
from msi_cli.errors import StateError
from msi_cli.store import codec, files
from msi_cli.store import cachefile
from msi_cli.store.statefile import CACHE_FORMAT, StateFile, digest_of, seal

# Commands that read the state, and commands that would write it: neither may touch a bad file.
COMMANDS = [
    ("show", "vm1"),
    ("list", "resources"),
    ("create-resource", "vm9", "--type", "vm"),
    ("assign", "vm2"),
    ("delete", "vm2", "--yes"),
]


# ---- helpers ---------------------------------------------------------------------------------------


def private_dir(path: Path) -> Path:
    return path.parent / (path.name + ".d")


def seed(cli) -> None:
    """resources: [vm1 (system-assigned), vm2 (id1)]; identities: [vm1's, id1, id2]."""
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    cli.ok("create-identity", "id1")
    cli.ok("create-identity", "id2")
    cli.ok("create-resource", "vm2", "--type", "vm", "--user-assigned", "id1")


def set_value(text: str, coll: str | None, index: int, key: str, value: str | None) -> tuple[str, int]:
    """Replace (or, with value None, remove) `key = ...` in the index-th `[[coll]]` table, or in the
    header when coll is None. Returns the new text and the 1-based line of the key."""
    lines = text.split("\n")
    start, count = 0, -1
    if coll is not None:
        for n, line in enumerate(lines):
            if line == f"[[{coll}]]":
                count += 1
                if count == index:
                    start = n + 1
                    break
        else:
            raise AssertionError(f"no [[{coll}]] number {index}")
    for n in range(start, len(lines)):
        if lines[n].startswith("["):
            break
        if lines[n].startswith(f"{key} = "):
            if value is None:
                del lines[n]
            else:
                lines[n] = f"{key} = {value}"
            return "\n".join(lines), n + 1
    raise AssertionError(f"no {key} in [[{coll}]] number {index}")


def header_line(text: str, coll: str, index: int) -> int:
    count = -1
    for n, line in enumerate(text.split("\n"), 1):
        if line == f"[[{coll}]]":
            count += 1
            if count == index:
                return n
    raise AssertionError(coll)


def refused(result, path: Path, line: int | None, *fragments: str) -> str:
    assert result.exit_code == 1, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    msg = lines[0]
    assert msg.startswith("error: ")
    assert str(path) in msg
    if line is not None:
        assert f"line {line}" in msg, msg
    else:
        assert "line " not in msg, msg
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    return msg


def every_file(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- files that cannot be used ---------------------------------------------------------------------


@pytest.mark.parametrize("args", COMMANDS)
def test_corrupt_toml_is_refused_with_its_line(cli, isolated_state, args):
    seed(cli)
    text, line = set_value(isolated_state.read_text(), "resources", 1, "location", '"eastus')  # unterminated string
    isolated_state.write_text(text)
    before = isolated_state.read_bytes()
    refused(cli(*args), isolated_state, line, "not valid TOML", "unchanged")
    assert isolated_state.read_bytes() == before


def test_corrupt_toml_is_refused_by_the_store(isolated_state):
    isolated_state.parent.mkdir(parents=True)
    isolated_state.write_bytes(b"schema = 1\nclock_offset = = 0\n")
    with pytest.raises(StateError, match=r"line 2"):
        StateFile(isolated_state).read()
    with pytest.raises(StateError):
        with StateFile(isolated_state).transaction():
            pass
    assert isolated_state.read_bytes() == b"schema = 1\nclock_offset = = 0\n"


def test_not_utf8_is_refused(cli, isolated_state):
    seed(cli)
    raw = isolated_state.read_bytes().replace(b'name = "vm2"', b'name = "vm\xff"')
    isolated_state.write_bytes(raw)
    refused(cli("list", "resources"), isolated_state, None, "UTF-8")
    assert isolated_state.read_bytes() == raw


INVALID_VALUES = [
    # (collection, index, key, new TOML value, expected words in the message)
    ("resources", 0, "subscription", '"not-a-guid"', ["'subscription'", "GUID"]),
    ("identities", 2, "client_id", '"7D6A1F3C-0000-0000-0000-000000000000"', ["'client_id'", "lower-case GUID"]),
    ("resources", 1, "type", '"mainframe"', ["unknown resource type 'mainframe'"]),
    ("resources", 1, "created", '"yesterday"', ["'created'"]),
    ("resources", 0, "name", '"bad name!"', ["invalid virtual machine name"]),
    ("resources", 0, "system_principal_id", '"0d2b5f7e-1f4b-4bd8-9d1e-000000000001"', ["missing system-assigned identity"]),
    (
        # a dangling entry (its identity deleted) is valid; an entry that is not an identity id is not
        "resources", 1, "user_identities",
        '[{id = "/subscriptions/0d2b5f7e-1f4b-4bd8-9d1e-000000000001/resourceGroups/default/providers/Microsoft.Compute/virtualMachines/vm9", '
        'principal_id = "0d2b5f7e-1f4b-4bd8-9d1e-000000000001", client_id = "0d2b5f7e-1f4b-4bd8-9d1e-000000000002"}]',
        ["invalid or repeated user-assigned identity id"],
    ),
    ("subscriptions", 0, "tenant", '"0d2b5f7e-1f4b-4bd8-9d1e-000000000001"', ["unknown tenant"]),
    ("identities", 1, "kind", '"Borrowed"', ["'kind'"]),
]


@pytest.mark.parametrize(("coll", "index", "key", "value", "words"), INVALID_VALUES)
def test_valid_toml_failing_validation_names_the_line(cli, isolated_state, coll, index, key, value, words):
    seed(cli)
    text = isolated_state.read_text()
    # user_identities is written as [[resources.user_identities]] tables: make it one line first
    if key == "user_identities":
        lines = text.split("\n")
        start = header_line(text, coll, index)
        n = next(i for i in range(start, len(lines)) if lines[i] == "[[resources.user_identities]]")
        end = next(i for i in range(n, len(lines)) if lines[i] == "")
        del lines[n : end + 1]
        created = next(i for i in range(start, len(lines)) if lines[i].startswith("created = "))
        lines.insert(created + 1, "user_identities = []")
        text = "\n".join(lines)
    text, line = set_value(text, coll, index, key, value)
    isolated_state.write_text(text)
    before = isolated_state.read_bytes()
    for args in COMMANDS:
        refused(cli(*args), isolated_state, line, *words)
        assert isolated_state.read_bytes() == before


def test_missing_required_key_points_at_its_table(cli, isolated_state):
    seed(cli)
    text, _ = set_value(isolated_state.read_text(), "resources", 1, "location", None)
    isolated_state.write_text(text)
    before = isolated_state.read_bytes()
    refused(cli("show", "vm2"), isolated_state, header_line(text, "resources", 1), "'location' is missing")
    assert isolated_state.read_bytes() == before


def test_duplicate_records_are_refused(cli, isolated_state):
    seed(cli)
    text = isolated_state.read_text()
    start = header_line(text, "resources", 0)
    lines = text.split("\n")
    block = []
    for line in lines[start - 1 :]:
        if block and line.startswith("["):
            break
        block.append(line)
    text = text + "\n" + "\n".join(line for line in block if not line.startswith('system_principal_id = "'))
    isolated_state.write_text(text)
    before = isolated_state.read_bytes()
    refused(cli("list", "resources"), isolated_state, header_line(text, "resources", 2), "duplicate")
    assert isolated_state.read_bytes() == before


@pytest.mark.parametrize("args", COMMANDS)
def test_newer_schema_is_refused(cli, isolated_state, args):
    seed(cli)
    text, line = set_value(isolated_state.read_text(), None, 0, "schema", str(SCHEMA_VERSION + 1))
    assert line == 1
    isolated_state.write_text(text)
    before = isolated_state.read_bytes()
    refused(cli(*args), isolated_state, 1, f"schema version {SCHEMA_VERSION + 1} is newer", "upgrade msi-cli")
    assert isolated_state.read_bytes() == before


@pytest.mark.parametrize("value", [None, '"1"', "0", "true"])
def test_missing_or_invalid_schema_is_refused(cli, isolated_state, value):
    seed(cli)
    text, line = set_value(isolated_state.read_text(), None, 0, "schema", value)
    isolated_state.write_text(text)
    before = isolated_state.read_bytes()
    expected_line = None if value is None else line
    for args in COMMANDS:
        refused(cli(*args), isolated_state, expected_line, "'schema'")
        assert isolated_state.read_bytes() == before


def test_state_path_that_is_a_folder(cli, isolated_state):
    isolated_state.mkdir(parents=True)
    refused(cli("list", "resources"), isolated_state, None, "folder")
    assert isolated_state.is_dir() and not any(isolated_state.iterdir())


# ---- permissions -----------------------------------------------------------------------------------


def test_folders_0700_and_files_0600(cli, isolated_state):
    old = os.umask(0)  # the store must not rely on the user's umask
    try:
        seed(cli)
        cli.ok("show", "vm1")
    finally:
        os.umask(old)
    priv = private_dir(isolated_state)
    keys = priv / "keys"

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(isolated_state.parent) == 0o700
    assert mode(priv) == 0o700
    assert mode(keys) == 0o700
    assert mode(isolated_state) == 0o600
    key_files = list(keys.iterdir())
    assert len(key_files) >= 3  # one certificate per identity, and any tenant signing keys
    for p in key_files:
        assert mode(p) == 0o600, p
    everything = [p for p in isolated_state.parent.rglob("*")]
    assert (priv / "cache") in everything
    for p in everything:
        assert mode(p) == (0o700 if p.is_dir() else 0o600), p


def test_key_files_hold_the_private_keys_named_in_the_state(cli, isolated_state):
    seed(cli)
    state = StateFile(isolated_state).read()
    keys = private_dir(isolated_state) / "keys"
    thumbprints = {c.thumbprint for sp in state.principals.values() for c in sp.key_credentials}
    kids = {k.kid for t in state.tenants.values() for k in t.signing_keys}
    assert len(thumbprints) == 3
    assert {p.stem for p in keys.iterdir()} == thumbprints | kids
    for p in keys.iterdir():
        assert b"PRIVATE KEY" in p.read_bytes()
    # key material stays out of the state file
    assert b"PRIVATE" not in isolated_state.read_bytes() and b"BEGIN" not in isolated_state.read_bytes()


# ---- the parse cache -------------------------------------------------------------------------------


def cache_digest(path: Path) -> str | None:
    blob = cachefile.loads((private_dir(path) / "cache").read_bytes())
    return blob.get("digest")


def test_hand_edit_is_picked_up_despite_the_cache(cli, isolated_state):
    seed(cli)
    assert cli.json("show", "vm2")["location"] == "eastus"
    original = isolated_state.read_bytes()
    # the cache holds the parsed file, keyed by a digest of the file's bytes
    assert cache_digest(isolated_state) == digest_of(original)
    st = isolated_state.stat()
    text, _ = set_value(original.decode(), "resources", 1, "location", '"westus"')
    edited = text.encode()
    assert len(edited) == len(original)  # same size ...
    isolated_state.write_bytes(edited)
    os.utime(isolated_state, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and same mtime: only the content says it changed
    assert cli.json("show", "vm2")["location"] == "westus"
    reloaded = StateFile(isolated_state).read()
    assert {r.name: r.location for r in reloaded.resources.values()} == {"vm1": "eastus", "vm2": "westus"}
    assert cache_digest(isolated_state) == digest_of(edited)
    # and a command that writes keeps the hand edit
    cli.ok("create-resource", "vm3", "--type", "vm")
    assert cli.json("show", "vm2")["location"] == "westus"
    assert b'location = "westus"' in isolated_state.read_bytes()


def test_hand_edit_that_breaks_the_file_is_not_hidden_by_the_cache(cli, isolated_state):
    seed(cli)
    cli.ok("show", "vm1")  # the cache is warm
    text, line = set_value(isolated_state.read_text(), "resources", 0, "type", '"mainframe"')
    isolated_state.write_text(text)
    before = isolated_state.read_bytes()
    refused(cli("show", "vm1"), isolated_state, line, "mainframe")
    assert isolated_state.read_bytes() == before


def _truncated(blob: bytes, digest: str) -> bytes:
    return blob[: len(blob) // 2]


def _garbage(blob: bytes, digest: str) -> bytes:
    return os.urandom(len(blob))


def _empty(blob: bytes, digest: str) -> bytes:
    return b""


def _not_a_dict(blob: bytes, digest: str) -> bytes:
    return seal([1, 2, 3])


def _other_format(blob: bytes, digest: str) -> bytes:
    data = cachefile.loads(blob)
    data["format"] = "0/old"
    data["rows"] = {"resources": []}
    return cachefile.dumps(data)


def _missing_parts(blob: bytes, digest: str) -> bytes:
    return seal({"format": CACHE_FORMAT, "digest": digest})  # the stamp's seal, not the cache's


def _wrong_structure(blob: bytes, digest: str) -> bytes:
    return cachefile.dumps({"format": CACHE_FORMAT, "digest": digest, "header": {}, "colls": {"resources": (0, 5, b"\x00")}})


@pytest.mark.parametrize(
    "corrupt", [_truncated, _garbage, _empty, _not_a_dict, _other_format, _missing_parts, _wrong_structure]
)
def test_corrupt_cache_is_ignored(cli, isolated_state, corrupt):
    seed(cli)
    expected = cli.json("list", "resources")
    cache = private_dir(isolated_state) / "cache"
    digest = digest_of(isolated_state.read_bytes())
    cache.write_bytes(corrupt(cache.read_bytes(), digest))
    before = isolated_state.read_bytes()
    result = cli("list", "resources", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout) == expected
    assert isolated_state.read_bytes() == before
    assert cache_digest(isolated_state) == digest  # rebuilt from the file
    # writes work too, with the record texts kept for writers damaged the same way
    cache.write_bytes(corrupt(cache.read_bytes(), digest))
    texts = private_dir(isolated_state) / "cache-text"
    if texts.exists():
        texts.write_bytes(corrupt(texts.read_bytes(), digest))
    cli.ok("create-resource", "vm3", "--type", "vm")
    assert len(cli.json("list", "resources")) == 3
    assert StateFile(isolated_state).read() == StateFile(isolated_state)._decode(isolated_state.read_bytes())[0]


def test_cache_that_is_a_folder_is_not_fatal(cli, isolated_state):
    seed(cli)
    cache = private_dir(isolated_state) / "cache"
    cache.unlink()
    cache.mkdir()
    assert [r["name"] for r in cli.json("list", "resources")] == ["vm1", "vm2"]
    cli.ok("create-resource", "vm3", "--type", "vm")
    assert len(cli.json("list", "resources")) == 3


# ---- atomic writes ---------------------------------------------------------------------------------


def test_no_temp_files_left_behind(cli, isolated_state):
    seed(cli)
    cli.ok("unassign", "vm1", "--system-assigned")
    cli.ok("delete", "id2", "--yes")
    leftovers = [p for p in isolated_state.parent.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert leftovers == []


def test_failed_write_leaves_file_and_folder_unchanged(cli, isolated_state, monkeypatch):
    seed(cli)
    before = every_file(isolated_state.parent)
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if Path(dst) == isolated_state:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(files.os, "replace", failing_replace)
        result = cli("create-resource", "vm3", "--type", "vm", "--system-assigned")
    refused(result, isolated_state, None, "No space left on device", "unchanged")
    after = every_file(isolated_state.parent)
    assert after == before  # the state file, no temp file, no new key, no log entry
    assert [r["name"] for r in cli.json("list", "resources")] == ["vm1", "vm2"]


def test_write_atomic_removes_its_temp_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_bytes(b"old")
    def failing_replace(src, dst, *args, **kwargs):
        raise OSError(5, "I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(files.os, "replace", failing_replace)
        with pytest.raises(StateError, match="unchanged"):
            files.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
    files.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


# ---- schema upgrades -------------------------------------------------------------------------------


def test_every_old_version_has_an_upgrade():
    assert sorted(codec.UPGRADES) == list(range(1, SCHEMA_VERSION))


def test_upgrade_chain_runs_in_order(monkeypatch):
    monkeypatch.setattr(codec, "SCHEMA_VERSION", 4)
    calls: list[tuple[int, dict]] = []

    def step(n: int, change):
        def run(doc: dict) -> dict:
            calls.append((n, dict(doc)))
            return change(dict(doc))

        return run

    chain = {
        1: step(1, lambda d: {"schema": d["schema"], "items": d["things"]}),  # v2 renames things -> items
        2: step(2, lambda d: {**d, "items": [i * 10 for i in d["items"]]}),  # v3 scales them
        3: step(3, lambda d: {**d, "count": len(d["items"])}),  # v4 adds a count
    }
    out = codec.upgrade({"schema": 1, "things": [1, 2]}, upgrades=chain)
    assert [n for n, _ in calls] == [1, 2, 3]
    assert [doc["schema"] for _, doc in calls] == [1, 2, 3]  # each step sees the version it upgrades
    assert out == {"schema": 4, "items": [10, 20], "count": 2}

    calls.clear()
    out = codec.upgrade({"schema": 3, "items": [5]}, upgrades=chain)
    assert [n for n, _ in calls] == [3]
    assert out == {"schema": 4, "items": [5], "count": 1}

    calls.clear()
    assert codec.upgrade({"schema": 4, "items": []}, upgrades=chain) == {"schema": 4, "items": []}
    assert calls == []

    with pytest.raises(codec.InvalidDocument, match="newer"):
        codec.upgrade({"schema": 5}, upgrades=chain)
    for bad in ({}, {"schema": "1"}, {"schema": 0}, {"schema": True}):
        with pytest.raises(codec.InvalidDocument, match="schema"):
            codec.upgrade(bad, upgrades=chain)


def test_old_file_is_upgraded_when_read(cli, isolated_state, monkeypatch):
    """A file of the current version from before `location` existed, read by an msi one version on."""
    seed(cli)
    text, _ = set_value(isolated_state.read_text(), "resources", 1, "location", None)
    isolated_state.write_text(text)
    before = isolated_state.read_bytes()
    # without an upgrade, the file does not validate
    with pytest.raises(StateError, match="'location' is missing"):
        StateFile(isolated_state).read()

    def add_location(doc: dict) -> dict:
        for res in doc.get("resources", []):
            res.setdefault("location", "northeurope")
        return doc

    current = codec.SCHEMA_VERSION
    monkeypatch.setattr(codec, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(codec, "UPGRADES", {**codec.UPGRADES, current: add_location})
    state = StateFile(isolated_state).read()
    assert state.schema == current + 1
    assert sorted(r.location for r in state.resources.values()) == ["eastus", "northeurope"]
    assert isolated_state.read_bytes() == before  # reading does not rewrite the file


# ---- transactions ----------------------------------------------------------------------------------


def test_failed_transaction_changes_nothing_and_removes_new_keys(isolated_state):
    sf = StateFile(isolated_state)
    with sf.transaction() as ctx:
        lifecycle.create_resource(ctx, "vm1", "vm", None, None, None, system_assigned=True)
    keys = private_dir(isolated_state) / "keys"
    before = every_file(isolated_state.parent)
    with pytest.raises(RuntimeError, match="boom"):
        with sf.transaction() as ctx:
            lifecycle.create_identity(ctx, "id1", None, None, None)
            res = next(iter(ctx.state.resources.values()))
            lifecycle.unassign(ctx, res, True, [])
            lifecycle.assign(ctx, res, True, [])
            assert len(list(keys.glob("*.pem"))) == 3  # the new certificates' keys were on disk (and journalled)
            raise RuntimeError("boom")
    assert every_file(isolated_state.parent) == before
    state = sf.read()
    assert len(state.identities) == 1 and not any(i.name == "id1" for i in state.identities.values())


def test_transaction_refuses_to_save_an_invalid_state(isolated_state):
    sf = StateFile(isolated_state)
    with sf.transaction() as ctx:
        lifecycle.create_resource(ctx, "vm1", "vm", None, None, None)
    before = every_file(isolated_state.parent)
    with pytest.raises(StateError, match="refusing to save an invalid state"):
        with sf.transaction() as ctx:
            lifecycle.create_identity(ctx, "id1", None, None, None)
            res = next(iter(ctx.state.resources.values()))
            res.system_principal_id = "0d2b5f7e-1f4b-4bd8-9d1e-000000000001"  # an identity that does not exist
    assert every_file(isolated_state.parent) == before


def test_successful_transaction_saves_and_logs(isolated_state):
    sf = StateFile(isolated_state)
    with sf.transaction() as ctx:
        identity = lifecycle.create_identity(ctx, "id1", None, None, None)
    state = sf.read()
    assert identity.principal_id in state.identities
    # the TOML itself holds it, not only the cache
    (private_dir(isolated_state) / "cache").unlink()
    assert StateFile(isolated_state).read() == state
    assert [e["operation"] for e in sf.log_entries()] == ["Create resource group", "Create user-assigned identity"]
