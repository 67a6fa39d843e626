"""The key ring in bulk: a transaction that makes many keys (an estate applied at once) writes them
without a temporary file or an fsync each, and must keep every promise the one-key path keeps: key
files 0600 and named by their thumbprint, durable before the state that names them, and nothing
left behind by a transaction that fails, is interrupted or is killed."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from msi_cli import crypto
from msi_cli.core import lifecycle
from msi_cli.store import files, keyring
from msi_cli.store.keyring import PENDING, FileKeyRing
from msi_cli.store.statefile import StateFile, _key_names

BULK = 50


@pytest.fixture(autouse=True)
def _no_real_sync(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """sync(2) flushes the whole machine: in-process, counted instead (as conftest skips fsync)."""
    calls: list[int] = []
    monkeypatch.setattr(os, "sync", lambda: calls.append(1))
    return calls


def keys_dir(state: Path) -> Path:
    return state.parent / (state.name + ".d") / "keys"


def key_files(state: Path) -> set[str]:
    return {p.name[: -len(".pem")] for p in keys_dir(state).glob("*.pem")}


def committed_names(state: Path) -> set[str]:
    return _key_names(StateFile(state).read())


def make_identities(ctx, count: int, prefix: str = "bulk") -> list:
    return [lifecycle.create_identity(ctx, f"{prefix}{n}", None, None, None) for n in range(count)]


def seeded(state: Path) -> StateFile:
    """A committed state with a tenant signing key and one identity."""
    sf = StateFile(state)
    with sf.transaction() as ctx:
        make_identities(ctx, 1, "first")
    return sf


def test_a_bulk_transaction_leaves_one_valid_private_key_file_per_thumbprint(isolated_state):
    sf = seeded(isolated_state)
    with sf.transaction() as ctx:
        made = make_identities(ctx, BULK)
    state = sf.read()
    thumbprints = {c.thumbprint for i in made for c in state.principals[i.principal_id].key_credentials}
    assert len(thumbprints) == BULK
    assert key_files(isolated_state) == committed_names(isolated_state) >= thumbprints
    ring = FileKeyRing(keys_dir(isolated_state))
    for name in thumbprints:
        path = keys_dir(isolated_state) / f"{name}.pem"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        pem = ring.certificate_pem(name)  # proves its name: the certificate's thumbprint, the key's pair
        assert crypto.sha1_thumbprint_hex(crypto.check_key_file(pem)) == name
    assert not (keys_dir(isolated_state) / PENDING).exists()
    assert [p.name for p in keys_dir(isolated_state).iterdir() if not p.name.endswith(".pem")] == []


def test_a_bulk_transaction_that_fails_leaves_no_key_and_no_journal(isolated_state):
    sf = seeded(isolated_state)
    before = {p.name: p.read_bytes() for p in keys_dir(isolated_state).iterdir()}
    state_before = isolated_state.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with sf.transaction() as ctx:
            make_identities(ctx, BULK)
            assert len(key_files(isolated_state)) == len(before) + BULK  # they were on disk, journalled
            assert (keys_dir(isolated_state) / PENDING).exists()
            raise RuntimeError("boom")
    assert {p.name: p.read_bytes() for p in keys_dir(isolated_state).iterdir()} == before
    assert isolated_state.read_bytes() == state_before


def test_an_interrupted_bulk_transaction_leaves_exactly_the_committed_keys(isolated_state):
    sf = seeded(isolated_state)
    with pytest.raises(KeyboardInterrupt):
        with sf.transaction() as ctx:
            make_identities(ctx, BULK)
            raise KeyboardInterrupt
    assert key_files(isolated_state) == committed_names(isolated_state)
    assert not (keys_dir(isolated_state) / PENDING).exists()


def test_keys_of_a_writer_that_vanished_are_removed_by_the_next_one(cli, isolated_state):
    # A writer killed before it could discard anything: its key ring made keys (journalled), one
    # half-written, and no state names them. The next transaction settles them.
    seeded(isolated_state)
    ring = FileKeyRing(keys_dir(isolated_state))
    for n in range(BULK):
        ring.new_identity_certificate(f"app{n}", 1_700_000_000, 1_800_000_000)
    half = "AB" * 20
    ring._journal.append(f"{half}\n".encode())
    (keys_dir(isolated_state) / f"{half}.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nMIGH")
    del ring  # never committed, never discarded
    assert len(key_files(isolated_state)) == len(committed_names(isolated_state)) + BULK + 1
    cli.ok("create-identity", "next")
    assert key_files(isolated_state) == committed_names(isolated_state)
    assert not (keys_dir(isolated_state) / PENDING).exists()


def test_the_first_keys_are_fsynced_each_and_the_rest_synced_once_before_the_state(isolated_state, monkeypatch,
                                                                                     _no_real_sync):
    sf = seeded(isolated_state)
    events: list[str] = []
    create, write, flush = files.create_private, files.write_atomic, FileKeyRing.flush

    def recording_create(path: Path, data: bytes, durable: bool = True) -> bool:
        events.append("key fsynced" if durable else "key")
        return create(path, data, durable)

    def recording_write(path: Path, data: bytes, durable: bool = True) -> None:
        events.append("state" if path == isolated_state else f"other {path.name}")
        write(path, data, durable)

    def recording_flush(self: FileKeyRing) -> None:
        events.append(f"flush {len(self._unsynced)}")
        flush(self)

    monkeypatch.setattr(files, "create_private", recording_create)
    monkeypatch.setattr(files, "write_atomic", recording_write)
    monkeypatch.setattr(FileKeyRing, "flush", recording_flush)
    with sf.transaction() as ctx:
        make_identities(ctx, BULK)
    each = keyring.FSYNC_EACH
    assert events[:BULK] == ["key fsynced"] * each + ["key"] * (BULK - each)
    assert events[BULK:BULK + 2] == [f"flush {BULK - each}", "state"]
    assert _no_real_sync == [1]  # one sync(2) for the 46 others

    events.clear()
    with sf.transaction() as ctx:  # one new identity: fsynced as ever, no sync(2)
        make_identities(ctx, 1, "single")
    assert events[:3] == ["key fsynced", "flush 0", "state"]
    assert _no_real_sync == [1]


def test_the_key_folder_is_checked_and_the_journal_opened_once_per_ring(isolated_state, monkeypatch):
    sf = seeded(isolated_state)
    opened: list[Path] = []
    open_private, private_dir = files._open_private, files.private_dir

    def recording_open(path: Path, flags: int, what: str):
        opened.append(path)
        return open_private(path, flags, what)

    def recording_dir(path: Path, tighten: bool = False) -> Path:
        opened.append(path)
        return private_dir(path, tighten)

    monkeypatch.setattr(files, "_open_private", recording_open)
    monkeypatch.setattr(files, "private_dir", recording_dir)
    with sf.transaction() as ctx:
        make_identities(ctx, BULK)
    assert opened.count(keys_dir(isolated_state) / PENDING) == 2  # appended to, then read by settle
    assert opened.count(keys_dir(isolated_state)) == 1


def test_a_key_file_already_there_is_replaced_atomically(isolated_state):
    seeded(isolated_state)
    name = "CD" * 20
    path = keys_dir(isolated_state) / f"{name}.pem"
    path.write_bytes(b"left by a writer killed mid-write")
    path.chmod(0o644)
    ring = FileKeyRing(keys_dir(isolated_state))
    ring._store(name, b"new content")
    assert path.read_bytes() == b"new content"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring.discard_new()
    assert not path.exists() and not (keys_dir(isolated_state) / PENDING).exists()


# ---- a real writer, killed with SIGKILL in the middle of a bulk `msi apply` ------------------------------

KILLER = """
import os, signal, sys
from msi_cli.store import files, keyring

made = [0]
store, create = keyring.FileKeyRing._store, files.create_private

def killed_after(self, name, pem):
    store(self, name, pem)
    made[0] += 1
    if made[0] == {after}:
        os.kill(os.getpid(), signal.SIGKILL)

def killed_mid_write(path, data, durable=True):
    made[0] += 1
    if made[0] < {after}:
        return create(path, data, durable)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)

if {mid_write}:
    files.create_private = killed_mid_write
else:
    keyring.FileKeyRing._store = killed_after
from msi_cli.cli import main
sys.argv = ["msi", "apply", sys.argv[1], "-o", "none"]
main()
"""


def estate(count: int) -> dict:
    return {
        "subscriptions": [{"name": "bulk"}],
        "resources": [{"name": f"res{n}", "type": "vm", "subscription": "bulk", "resource_group": "rg", "system_assigned": True}
                      for n in range(count)],
        "role_assignments": [{"role": "Reader", "scope": "/subscriptions/bulk/resourceGroups/rg", "resource": f"bulk/rg/res{n}"}
                             for n in range(count)],
    }


@pytest.mark.e2e
@pytest.mark.parametrize("mid_write", [False, True], ids=["between-keys", "mid-write"])
def test_an_apply_killed_with_sigkill_leaves_only_the_committed_keys(msi_proc, isolated_state, tmp_path, mid_write):
    assert msi_proc("create-identity", "first").returncode == 0
    committed = committed_names(isolated_state)
    state_before = isolated_state.read_bytes()
    path = tmp_path / "estate.json"
    path.write_text(json.dumps(estate(BULK)))
    after = 30
    proc = subprocess.run([sys.executable, "-c", KILLER.format(after=after, mid_write=mid_write), str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert isolated_state.read_bytes() == state_before  # it never committed
    left = key_files(isolated_state) - committed
    assert len(left) == after  # what it made, the last one whole or half-written...
    assert set((keys_dir(isolated_state) / PENDING).read_text().split()) == left  # ...each journalled
    damaged = [n for n in left if len((keys_dir(isolated_state) / f"{n}.pem").read_bytes()) < 400]
    assert len(damaged) == (1 if mid_write else 0)

    proc = msi_proc("create-identity", "next")
    assert proc.returncode == 0, proc.stderr
    assert key_files(isolated_state) == committed_names(isolated_state)
    assert committed_names(isolated_state) - committed and not committed - committed_names(isolated_state)
    assert sorted(p.name for p in keys_dir(isolated_state).iterdir() if not p.name.endswith(".pem")) == []
    assert msi_proc("apply", str(path), "-o", "none").returncode == 0  # and the estate applies after all
    assert key_files(isolated_state) == committed_names(isolated_state)


def test_a_writer_settles_its_own_keys_from_the_objects_it_changed(isolated_state, monkeypatch):
    """When the journal names only this ring's keys, settling looks at the principals the
    transaction handed out or added, not at every one, and lists no folder: a key made but named by
    no saved object goes, the others stay."""
    sf = seeded(isolated_state)
    before = key_files(isolated_state)
    listed: list[Path] = []
    real = files.remove_leftovers
    monkeypatch.setattr(files, "remove_leftovers", lambda folder, *a: listed.append(folder) or real(folder, *a))
    with sf.transaction() as ctx:
        [made] = make_identities(ctx, 1, "second")
        stray = ctx.keys.new_identity_certificate("app-stray", 1_700_000_000, 1_800_000_000).thumbprint
    assert keys_dir(isolated_state) not in listed
    assert ctx.state.principals.built() is not None  # not read whole, for its key names or its summary
    after = key_files(isolated_state)
    assert stray not in after and len(after) == len(before) + 1
    assert after == committed_names(isolated_state)
    assert not (keys_dir(isolated_state) / PENDING).exists()


def test_a_committed_key_left_in_the_journal_by_a_writer_killed_before_settling_stays(isolated_state):
    """A writer that saved its state and was killed before settling left its key names journalled:
    the next writer, seeing names that are not its own, checks them against the whole state."""
    sf = seeded(isolated_state)
    committed = committed_names(isolated_state)
    (keys_dir(isolated_state) / PENDING).write_bytes("".join(f"{n}\n" for n in sorted(committed)).encode())
    with sf.transaction() as ctx:
        make_identities(ctx, 1, "third")
    assert committed < key_files(isolated_state) == committed_names(isolated_state)
