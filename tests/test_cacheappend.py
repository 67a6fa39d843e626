"""The parse cache grows by appending (store/cachefile.py): a save that changed a few pieces
appends them and a new head to the file it read, and the pieces already there never move; a file
mostly stale, replaced, or torn is written whole again, and a reader is never misled."""

from __future__ import annotations

import os

import pytest

from msi_cli.core import lookup
from msi_cli.store import cachefile, rows
from msi_cli.store.chunks import Chunked
from msi_cli.store.statefile import StateFile



@pytest.fixture
def sf(isolated_state, seed_state) -> StateFile:
    seed_state(600)
    sf = StateFile(isolated_state)
    sf.read()  # the parse cache, written whole
    return sf


def _move(sf: StateFile, name: str, location: str) -> None:
    with sf.transaction() as ctx:
        lookup.resource(ctx.state, name).location = location


def _cached_rows(sf: StateFile, coll: str) -> list:
    return Chunked(sf.read().blob(coll)).rows()


def _truth(sf: StateFile, coll: str) -> list:
    return rows.collection_rows(coll, getattr(sf._parse(sf.path.read_bytes()), coll))


def test_a_small_change_appends_to_the_cache_it_read(sf):
    before = os.stat(sf.cache_path)
    _move(sf, "res300", "westeurope")
    after = os.stat(sf.cache_path)
    assert (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)  # the same file, appended to
    assert 0 < after.st_size - before.st_size < before.st_size / 4
    assert sf.cache_path.read_bytes()[:before.st_size] == sf.cache_path.read_bytes()[:before.st_size]
    assert _cached_rows(sf, "resources") == _truth(sf, "resources")
    assert lookup.resource(sf.read(), "res300").location == "westeurope"


def test_many_appends_keep_every_answer_and_the_file_is_written_whole_when_mostly_stale(sf, monkeypatch):
    monkeypatch.setattr(cachefile, "_SLACK", 0)
    inodes = set()
    for step in range(8):
        _move(sf, f"res{step * 70}", "westus" + "x" * step)
        inodes.add(os.stat(sf.cache_path).st_ino)
        assert _cached_rows(sf, "resources") == _truth(sf, "resources")
    assert len(inodes) > 1  # rewritten whole at least once
    blob = cachefile.loads(sf.cache_path.read_bytes())
    assert blob is not None and blob["digest"]


def test_a_reader_holding_the_file_keeps_reading_what_its_head_names(sf):
    old = sf.read()
    _move(sf, "res500", "westeurope")  # appended while `old` still holds the file open
    assert lookup.resource(old, "res500").location != "westeurope"  # built now, from the state it read
    assert lookup.resource(sf.read(), "res500").location == "westeurope"


@pytest.mark.parametrize("cut", [1, 10, 1000])
def test_a_torn_append_is_not_trusted(sf, cut):
    size = sf.cache_path.stat().st_size
    _move(sf, "res20", "westeurope")
    data = sf.cache_path.read_bytes()
    assert len(data) > size
    with open(sf.cache_path, "r+b") as fh:  # as if the writer died mid-append
        fh.truncate(max(size, len(data) - cut))
    state = sf.read()
    assert lookup.resource(state, "res20").location == "westeurope"
    assert rows.collection_rows("resources", state.resources) == _truth(sf, "resources")


def test_a_cache_replaced_since_it_was_read_is_written_whole(sf, monkeypatch):
    real = StateFile._append_cache

    def replaced_first(self, blob):  # another process wrote a cache of its own meanwhile
        data = self.cache_path.read_bytes()
        self.cache_path.unlink()
        self.cache_path.write_bytes(data)
        os.chmod(self.cache_path, 0o600)
        return real(self, blob)

    monkeypatch.setattr(StateFile, "_append_cache", replaced_first)
    before = os.stat(sf.cache_path)
    _move(sf, "res40", "westeurope")
    after = os.stat(sf.cache_path)
    assert after.st_size < before.st_size * 1.5 and cachefile.loads(sf.cache_path.read_bytes()) is not None
    assert _cached_rows(sf, "resources") == _truth(sf, "resources")


def test_a_file_that_grows_while_it_is_opened_is_read_at_its_new_size(sf):
    data = sf.cache_path.read_bytes()
    fd = os.open(sf.cache_path, os.O_RDONLY)
    src = cachefile.Source(fd, len(data) - 7)  # its size taken mid-append
    blob = cachefile.load(src)
    assert blob is not None and src.size == len(data)


def test_a_cache_whose_trailer_names_a_huge_head_is_not_read(tmp_path, monkeypatch):
    """A damaged or planted trailer cannot make a reader allocate what it names."""
    import binascii

    size = (16 << 20) + 1
    head = bytes(size)
    path = tmp_path / "cache"
    path.write_bytes(cachefile._MARK + head + (4).to_bytes(8, "big") + size.to_bytes(4, "big")
                     + binascii.crc32(head).to_bytes(4, "big") + cachefile._MARK)
    asked: list[int] = []
    real = cachefile.Source.read
    monkeypatch.setattr(cachefile.Source, "read", lambda self, at, length: asked.append(length) or real(self, at, length))
    fd = os.open(path, os.O_RDONLY)
    assert cachefile.load(cachefile.Source(fd, path.stat().st_size)) is None
    assert max(asked) < 1 << 20
