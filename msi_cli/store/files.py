"""Small file primitives: owner-only folders, atomic writes, and an exclusive lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from msi_cli.errors import StateError


def private_dir(path: Path, tighten: bool = False) -> Path:
    """Create `path` (and its parents) if needed; the folder itself is owner-only. With `tighten`,
    a folder that already exists with wider permissions is made owner-only too (msi's own
    folders; never the user's folder that holds the state file)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if tighten and path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise StateError(f"cannot create folder {path}: {exc.strerror}") from None
    return path


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a file so that readers see the old or the new content, never a part; mode 0600.

    `durable=False` skips the fsync, for caches that are rebuilt when lost."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise StateError(f"cannot write {path}: {exc.strerror}; the previous file is unchanged") from None
        raise


def append_line(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if needed) for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise StateError(f"state path {path} is a folder, not a file") from None
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}") from None
