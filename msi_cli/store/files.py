"""Small file primitives: owner-only folders, atomic writes, an exclusive lock, and reads that
never follow a planted symlink, never block on a FIFO and never read more than they can hold.

msi's private folder (`<state>.d/`, its `keys/`) and every file in it must belong to the user
running msi and be writable by nobody else: when the state lives in a shared folder, another user
could otherwise create them first and swap a signing key. Such a folder or file is refused
(StateError, exit 1), never repaired.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from typing import NoReturn
from pathlib import Path

from msi_cli.errors import StateError

MAX_STATE_BYTES = 64 * 1024 * 1024  # far above any real state (1,000 resources: about 1 MB)
MAX_PRIVATE_BYTES = 256 * 1024 * 1024  # caches and the activity log

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _refuse_foreign(path: Path, st: os.stat_result, what: str) -> None:
    """Refuse a private folder or file that another user owns or could have written."""
    if st.st_uid != os.geteuid():
        raise StateError(
            f"{what} {path} belongs to another user (uid {st.st_uid}); msi keeps keys and tokens only in "
            "files you own",
            hint="remove it, or keep the state in a folder only you can write",
        )
    if st.st_mode & 0o022:
        raise StateError(
            f"{what} {path} can be written by other users (mode {stat.S_IMODE(st.st_mode):o}); msi will not trust it",
            hint="remove it, or make it owner-only (chmod go-w) if you know it is yours",
        )


def _open_private(path: Path, flags: int, what: str) -> tuple[int, os.stat_result]:
    """An fd on a private file, checked: not a symlink, a regular file, owned by this user and
    writable by no one else. FileNotFoundError passes through."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _CLOEXEC | _NONBLOCK, 0o600)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if os.path.islink(path):
            raise StateError(f"{what} {path} is a symbolic link; msi does not follow links in its private folder") from None
        if os.path.isdir(path):
            raise StateError(f"{what} {path} is a folder, not a file", hint="remove it; msi recreates it") from None
        raise StateError(f"cannot open {what} {path}: {_why(exc)}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise StateError(f"{what} {path} is a folder, not a file", hint="remove it; msi recreates it")
        if not stat.S_ISREG(st.st_mode):
            raise StateError(f"{what} {path} is not a regular file", hint="remove it; msi recreates it")
        _refuse_foreign(path, st, what)
        if st.st_mode & 0o077:  # ours, but readable by others: tighten (it may hold keys or tokens)
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def size_text(limit: int) -> str:
    """A byte limit as a message says it: 64 KiB, 256 MiB."""
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"


def read_input(path: Path, what: str, limit: int = MAX_PRIVATE_BYTES) -> bytes:
    """A file the user names for msi to read (an estate, az JSON, a state export): NotFound when
    missing; InvalidArgument for a folder, a FIFO or a device (opened without waiting, never read)
    or a file over `limit` bytes (no byte beyond it is read)."""
    from msi_cli.errors import InvalidArgument, NotFound

    words = {"folder": f"is a directory, not {what}", "special": f"not a regular file (a FIFO, device or socket), not {what}",
             "large": f"larger than {size_text(limit)}; msi will not read it"}
    opened = _open_regular(path, limit, lambda why: InvalidArgument(f"{path}: {words.get(why, why)}"))
    if opened is None:
        raise NotFound(f"{path}: no such file")
    fd, st = opened
    try:
        return _read_fd(fd, path, limit, what, st.st_size)
    except StateError as exc:
        raise InvalidArgument(exc.message) from None
    finally:
        os.close(fd)


def _open_regular(path: Path, limit: int, refused: Callable[[str], Exception]) -> tuple[int, os.stat_result] | None:
    """The open descriptor and stat of the regular file at `path` (None when it is missing),
    opened without waiting on a FIFO. `refused(why)` makes the caller's error for a folder
    ('folder'), anything else that is not a regular file ('special'), a file over `limit` bytes
    ('large'), or what the system said."""
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC | _NONBLOCK)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise refused("folder") from None
    except OSError as exc:
        raise refused(_why(exc)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise refused("folder")
        if not stat.S_ISREG(st.st_mode):
            raise refused("special")
        if st.st_size > limit:
            raise refused("large")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _read_fd(fd: int, path: Path, limit: int, what: str, size: int = 0) -> bytes:
    """At most `limit` bytes; `size`, the file's size when known, is read in one piece."""
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            chunk = os.read(fd, min(max(1 << 20, size + 1), limit + 1 - total))
        except BlockingIOError:
            raise StateError(f"{what} {path} is not a regular file (reading it would block)") from None
        except OSError as exc:
            raise StateError(f"cannot read {what} {path}: {_why(exc)}") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise StateError(f"{what} {path} is larger than {size_text(limit)}; msi will not read it")


def check_private_dir(path: Path) -> bool:
    """Whether msi's private folder `path` exists; raises StateError when it is a symlink, not a
    folder, another user's, or writable by others."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateError(f"cannot inspect folder {path}: {_why(exc)}") from None
    if stat.S_ISLNK(st.st_mode):
        raise StateError(f"private folder {path} is a symbolic link; msi does not follow links there",
                         hint="remove the link; msi creates the folder itself")
    if not stat.S_ISDIR(st.st_mode):
        raise StateError(f"private folder {path} is not a folder", hint="remove it; msi creates the folder itself")
    _refuse_foreign(path, st, "private folder")
    return True


def _make_dirs(path: Path) -> None:
    """mkdir -p where every folder created is 0700, whatever the umask (mkdir(parents=True) gives
    the parents the umask's mode)."""
    missing = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass


def private_dir(path: Path, tighten: bool = False) -> Path:
    """Create `path` (and its parents) if needed, each folder created owner-only. With `tighten`,
    `path` is msi's own private folder: it is checked (see `check_private_dir`) and, if it is
    readable by others, made owner-only (never the user's folder that holds the state file)."""
    try:
        _make_dirs(path)
        if tighten:
            check_private_dir(path)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC)
            try:
                if os.fstat(fd).st_mode & 0o077:
                    os.fchmod(fd, 0o700)
            finally:
                os.close(fd)
        elif not path.is_dir():
            raise StateError(f"{path} is not a folder")
    except OSError as exc:
        raise StateError(f"cannot create folder {path}: {_why(exc)}") from None
    return path


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a file so that readers see the old or the new content, never a part; mode 0600.

    `durable=False` skips the fsync, for caches that are rebuilt when lost."""
    try:
        fd, tmp = _temporary(path)
    except OSError as exc:
        raise StateError(f"cannot write {path}: {_why(exc)}; the previous file is unchanged") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        _undo(tmp, exc, lambda why: f"cannot write {path}: {why}; the previous file is unchanged")


TEMP_SUFFIX = ".tmp"


def _temporary(path: Path) -> tuple[int, str]:
    """A new 0600 file beside `path`, named `.<name>.<random>.tmp`, as tempfile.mkstemp makes it
    (created exclusively, never through a link), without importing tempfile (and random)."""
    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}{TEMP_SUFFIX}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC | _NOFOLLOW, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def create_private(path: Path, data: bytes, durable: bool = True) -> bool:
    """Create the new file `path` (0600, never through a link) holding `data`; False when a file
    of that name exists already (nothing was written). For a file nobody reads before a later
    commit names it (a key file: its name is its thumbprint): no temporary file and rename, and
    with `durable=False` no fsync (the commit makes it durable first: `sync_files`). On failure the
    file is removed and StateError raised."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise StateError(f"cannot write {path}: {_why(exc)}") from None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    except BaseException as exc:
        _undo(path, exc, lambda why: f"cannot write {path}: {why}")
    finally:
        os.close(fd)
    return True


def _undo(path: Path | str, exc: BaseException, message: Callable[[str], str]) -> NoReturn:
    """Remove the file a failed write made, then raise: an OSError as StateError(message of its
    reason), anything else (an interrupt) as it was."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    if isinstance(exc, OSError):
        raise StateError(message(_why(exc))) from None
    raise exc


def remove_leftovers(folder: Path, prefix: str = ".") -> None:
    """Delete this user's temporary files of writers killed mid-write (`.<name>.<random>.tmp`,
    names starting with `prefix`). Call with the state lock held: then no writer of the state or
    the keys is running (a reader's lost cache file is simply rebuilt)."""
    uid = os.geteuid()
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if (entry.name.startswith(prefix) and entry.name.endswith(TEMP_SUFFIX) and entry.is_file(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_uid == uid):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def append_line(path: Path, line: bytes, what: str = "activity log") -> None:
    fd, _ = _open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what)
    try:
        os.write(fd, line)
    except OSError as exc:
        raise StateError(f"cannot write {what} {path}: {_why(exc)}") from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if needed) for the block."""
    fd, _ = _open_private(path, os.O_RDWR | os.O_CREAT, "lock file")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def held_lock(path: Path) -> int | None:
    """An fd holding an exclusive advisory lock on `path` (created if needed), or None when
    another process holds it. The lock lasts until the fd is closed or the process ends."""
    fd, _ = _open_private(path, os.O_RDWR | os.O_CREAT, "lock file")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def read_private(path: Path, what: str, limit: int = MAX_PRIVATE_BYTES, cache: bool = False) -> bytes | None:
    """A file from msi's private folder (None when missing), checked as `_open_private` does. A
    `cache` that is a folder or a special file is treated as missing (it is rebuilt, or its write
    fails quietly); a symlink or another user's file is refused all the same."""
    opened = open_private(path, what, cache)
    if opened is None:
        return None
    fd, st = opened
    try:
        return _read_fd(fd, path, limit, what, min(st.st_size, limit))
    finally:
        os.close(fd)


def open_private(path: Path, what: str, cache: bool = False) -> tuple[int, os.stat_result] | None:
    """An fd to read a file of msi's private folder, and its stat, checked as `read_private`
    checks (None when missing, or for a `cache` that is not a file); the caller closes it."""
    try:
        return _open_private(path, os.O_RDONLY, what)
    except FileNotFoundError:
        return None
    except StateError:
        if cache and not os.path.islink(path) and os.path.lexists(path) and not os.path.isfile(path):
            with contextlib.suppress(OSError):
                if os.lstat(path).st_uid == os.geteuid():
                    return None
        raise


def check_state_path(path: Path) -> None:
    """Refuse a state path that is not a regular file (a folder, a FIFO, a device) before any
    folder is created beside it. A missing file is fine: it is created."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"cannot read {path}: {_why(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise StateError(f"state path {path} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise StateError(f"state path {path} is not a regular file (a device, FIFO or socket)")
    if st.st_size > MAX_STATE_BYTES:
        raise StateError(f"state file {path} is larger than {MAX_STATE_BYTES // (1024 * 1024)} MiB; msi will not read it")


def read_bytes(path: Path, limit: int = MAX_STATE_BYTES) -> bytes | None:
    """The state file's bytes (None when missing). A symlink to it is followed (it is the user's
    file), but a folder, FIFO or device is refused at once and at most `limit` bytes are read."""
    return read_bytes_stat(path, limit)[0]


def read_bytes_stat(path: Path, limit: int = MAX_STATE_BYTES) -> tuple[bytes | None, os.stat_result | None]:
    """`read_bytes`, with the file's stat as it was when read (unchanged during the read)."""
    words = {"folder": f"state path {path} is a folder, not a file",
             "special": f"state path {path} is not a regular file (a device, FIFO or socket)",
             "large": f"state file {path} is larger than {size_text(limit)}; msi will not read it"}
    opened = _open_regular(path, limit, lambda why: StateError(words.get(why, f"cannot read {path}: {why}")))
    if opened is None:
        return None, None
    fd, st = opened
    try:
        data = _read_fd(fd, path, limit, "state file", st.st_size)
        after = os.fstat(fd)
        same = (after.st_size, after.st_mtime_ns, after.st_ctime_ns) == (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        return data, (after if same and len(data) == st.st_size else None)
    finally:
        os.close(fd)
