"""The stamp (store/statefile.py): once the state file has been still for STAMP_SETTLED_NS, a
read whose stat matches the stamp trusts the cache without reading or hashing the file; any
change to the file is still seen."""

from __future__ import annotations

import marshal
import os
import sys

import pytest

from msi_cli.errors import StateError
from msi_cli.store import files, samefile, statefile
from msi_cli.store.statefile import StateFile


@pytest.fixture
def sf(cli, isolated_state) -> StateFile:
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    cli.ok("create-resource", "web1", "--type", "webapp")
    return StateFile(isolated_state)


def _no_file_reads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the state file was read")

    monkeypatch.setattr(files, "read_bytes_stat", refuse)
    monkeypatch.setattr(files, "read_bytes", refuse)
    monkeypatch.setattr(statefile, "digest_of", refuse)


def test_a_settled_file_is_read_from_its_cache_alone(sf, monkeypatch):
    monkeypatch.setattr(statefile, "_now_ns", lambda: 2**62)  # long after any change
    expected = sf.read()  # hashes the file, and stamps it
    assert sf.stamp_path.exists() and sf.stamp_path.stat().st_mode & 0o777 == 0o600
    with monkeypatch.context() as m:
        _no_file_reads(m)
        assert sf.read() == expected
    hashed = []
    real = statefile.digest_of
    monkeypatch.setattr(statefile, "digest_of", lambda data: hashed.append(len(data)) or real(data))
    with sf.transaction() as ctx:  # a writer reads the file (it copies unchanged records) but does not hash it
        ctx.state.resources[next(iter(ctx.state.resources))].location = "westeurope"
    assert hashed == [len(sf.path.read_bytes())]  # only the new file, for its cache


@pytest.mark.parametrize("whole_second", [False, True])
def test_a_file_changed_lately_gets_no_stamp(sf, monkeypatch, whole_second):
    if whole_second:  # a filesystem that keeps whole seconds: two seconds must pass
        os.utime(sf.path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    st = os.stat(sf.path)
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    settled = statefile.COARSE_SETTLED_NS if whole_second else statefile.STAMP_SETTLED_NS
    assert settled >= 10_000_000 * 10  # ten of Linux's coarsest clock ticks
    monkeypatch.setattr(statefile, "_now_ns", lambda: changed + settled - 1)
    sf.read()
    assert not sf.stamp_path.exists()  # the stat of a file changed in the same tick could match
    monkeypatch.setattr(statefile, "_now_ns", lambda: changed + settled)
    sf.read()
    assert sf.stamp_path.exists()


@pytest.mark.parametrize("edit", ["longer", "same size", "replaced"])
def test_any_edit_after_the_stamp_is_seen(sf, monkeypatch, edit):
    monkeypatch.setattr(statefile, "_now_ns", lambda: 2**62)  # long after any change
    sf.read()
    assert sf.stamp_path.exists()
    head, resources = sf.path.read_bytes().split(b"[[resources]]", 1)

    def edited(location: bytes) -> bytes:
        return head + b"[[resources]]" + resources.replace(b'location = "eastus"', b'location = "' + location + b'"', 1)

    if edit == "longer":
        sf.path.write_bytes(edited(b"westeurope"))
    elif edit == "same size":
        with open(sf.path, "r+b") as fh:  # in place: same inode, same size
            fh.write(edited(b"westus"))
    else:
        tmp = sf.path.with_suffix(".new")
        tmp.write_bytes(edited(b"westus"))
        os.replace(tmp, sf.path)
    if edit == "same size" and statefile._stat_key(os.stat(sf.path)) == statefile.unseal(sf.stamp_path.read_bytes())["stat"]:
        pytest.skip("the edit fell in the stamped clock tick: the real margin (no stamp for a fresh file) covers it")
    locations = sorted(r.location for r in sf.read().resources.values())
    assert locations == ["eastus", "westeurope" if edit == "longer" else "westus"]


@pytest.mark.parametrize("stamp", [b"", b"garbage", statefile.seal({"format": "0", "stat": (), "digest": "x"}),
                                   statefile.seal([1, 2]), statefile.seal({"format": statefile.CACHE_FORMAT, "stat": "x"}),
                                   marshal.dumps({"format": statefile.CACHE_FORMAT, "stat": "x"})])
def test_a_damaged_stamp_is_ignored(sf, monkeypatch, stamp):
    monkeypatch.setattr(statefile, "_now_ns", lambda: 2**62)  # long after any change
    expected = sf.read()
    sf.stamp_path.write_bytes(stamp)
    assert sf.read() == expected


def test_a_stamp_naming_another_digest_is_not_trusted(sf, monkeypatch):
    monkeypatch.setattr(statefile, "_now_ns", lambda: 2**62)  # long after any change
    sf.read()
    blob = statefile.unseal(sf.stamp_path.read_bytes())
    blob["digest"] = "0" * 40  # no cache holds it: the file is read and hashed again
    sf.stamp_path.write_bytes(statefile.seal(blob))
    assert len(sf.read().resources) == 2


def test_a_stamp_planted_as_a_link_is_refused(sf, monkeypatch, tmp_path):
    monkeypatch.setattr(statefile, "_now_ns", lambda: 2**62)  # long after any change
    sf.read()
    target = tmp_path / "elsewhere"
    target.write_bytes(sf.stamp_path.read_bytes())
    sf.stamp_path.unlink()
    sf.stamp_path.symlink_to(target)
    with pytest.raises(StateError, match="link"):
        sf.read()


@pytest.mark.parametrize("size", [10, 3 << 20])
def test_the_new_files_digest_is_the_same_from_another_thread(size):
    data = os.urandom(size)
    assert statefile._digest_beside(data)() == statefile.digest_of(data)


# ---- a writer vouches for the large file it wrote (StateFile._vouch) -------------------------------


def _settle_writer(monkeypatch, after_ns: int = 2**62) -> None:
    monkeypatch.setattr(statefile, "VOUCH_MIN_BYTES", 0)  # this state is small: vouch for it as for a large one
    monkeypatch.setattr(statefile, "_coarse_now_ns", lambda: after_ns)  # the file clock's tick has passed
    monkeypatch.setattr(statefile, "_now_ns", lambda: after_ns)


def _move_vm(sf: StateFile, location: str = "westeurope") -> None:
    with sf.transaction() as ctx:
        next(r for r in ctx.state.resources.values() if r.name == "vm1").location = location


def test_a_writer_stamps_what_it_wrote_and_the_next_command_does_not_hash_it(sf, monkeypatch):
    _settle_writer(monkeypatch)
    sf.stamp_path.unlink(missing_ok=True)
    _move_vm(sf)
    assert statefile.unseal(sf.stamp_path.read_bytes())["stat"] == statefile._stat_key(os.stat(sf.path))
    with monkeypatch.context() as m:
        _no_file_reads(m)
        assert {r.name: r.location for r in sf.read().resources.values()}["vm1"] == "westeurope"


def test_a_writer_does_not_stamp_a_file_changed_after_it_wrote_it(sf, monkeypatch):
    _settle_writer(monkeypatch)
    sf.stamp_path.unlink(missing_ok=True)
    real_vouch = StateFile._vouch

    def meddle(self, *written):  # another program rewrites the file in place, same size, before the writer is done
        text = self.path.read_bytes()
        with open(self.path, "r+b") as fh:
            fh.write(text.replace(b'location = "westeurope"', b'location = "westus2eu"', 1))
        real_vouch(self, *written)

    monkeypatch.setattr(StateFile, "_vouch", meddle)
    _move_vm(sf)
    assert not sf.stamp_path.exists()
    assert {r.name: r.location for r in sf.read().resources.values()}["vm1"] == "westus2eu"


@pytest.mark.parametrize("case", ["too soon", "no clock", "whole seconds", "small file"])
def test_a_writer_does_not_stamp_when_the_file_times_cannot_vouch(sf, monkeypatch, case):
    _settle_writer(monkeypatch)
    if case == "too soon":  # the file clock is still in the tick of the change: a change now could keep the stat
        real_vouch = StateFile._vouch

        def after_write(self, *written):
            st = os.stat(self.path)
            monkeypatch.setattr(statefile, "_coarse_now_ns", lambda: max(st.st_ctime_ns, st.st_mtime_ns))
            real_vouch(self, *written)

        monkeypatch.setattr(StateFile, "_vouch", after_write)
    elif case == "no clock":
        monkeypatch.setattr(statefile, "_coarse_now_ns", lambda: None)
    elif case == "whole seconds":
        real_vouch = StateFile._vouch

        def coarse(self, *written):
            os.utime(self.path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
            real_vouch(self, *written)

        monkeypatch.setattr(StateFile, "_vouch", coarse)
    else:
        monkeypatch.setattr(statefile, "VOUCH_MIN_BYTES", 1 << 20)
    sf.stamp_path.unlink(missing_ok=True)
    _move_vm(sf)
    assert not sf.stamp_path.exists()


def test_the_file_clock_is_the_coarse_clock():
    """File times are taken from Linux's coarse clock: it reads the start of the current tick,
    at most a tick (10 ms at the coarsest) behind the real clock; elsewhere it is unknown."""
    import time

    if not sys.platform.startswith("linux"):
        assert statefile._coarse_now_ns() is None
        return
    real = time.time_ns()
    coarse = statefile._coarse_now_ns()
    assert coarse is not None and -10_000_000 <= real - coarse < 100_000_000


def test_holds_compares_the_whole_file(tmp_path):
    path = tmp_path / "f"
    data = os.urandom((1 << 20) * 2 + 5)
    path.write_bytes(data)
    assert samefile.holds(path, data) is not None
    assert samefile.holds(path, data[:-1]) is None
    assert samefile.holds(path, data[:-1] + bytes([data[-1] ^ 1])) is None
    assert samefile.holds(tmp_path / "missing", data) is None
    assert samefile.holds(tmp_path, b"") is None
