"""Checks that a file is still the very one a writer knows: its bytes (`holds`, for a writer
that vouches for the state file it wrote) and its identity (`append_to`, which appends only to
the file a cache was read from)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from msi_cli.errors import StateError
from msi_cli.store.files import _CLOEXEC, _NONBLOCK, _open_private


def holds(path: Path, data: bytes) -> os.stat_result | None:
    """The stat of `path` if it is a regular file holding exactly `data`, unchanged while it was
    compared (a megabyte at a time, so no copy of a large file is made); else None."""
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC | _NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode) or st.st_size != len(data):
        os.close(fd)
        return None
    with open(fd, "rb", buffering=0) as f:
        try:
            buf, view, at = bytearray(1 << 20), memoryview(data), 0
            while n := f.readinto(buf):
                if at + n > len(data) or buf[:n] != view[at:at + n]:
                    return None
                at += n
            after = os.fstat(fd)
        except OSError:
            return None
    same = (after.st_size, after.st_mtime_ns, after.st_ctime_ns) == (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return after if same and at == len(data) else None


def append_to(path: Path, data: bytes, expect: tuple[int, int, int], what: str) -> bool:
    """Append `data` to the private file `path` if it is still the file `expect` names (inode,
    device, size); False (nothing written) if it is not, or cannot be written."""
    try:
        fd, st = _open_private(path, os.O_WRONLY | os.O_APPEND, what)
    except (OSError, StateError):
        return False
    try:
        if (st.st_ino, st.st_dev, st.st_size) != expect:
            return False
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
