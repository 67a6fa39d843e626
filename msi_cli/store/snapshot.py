"""A whole state in one file, keys included: `msi state export FILE` / `msi state import FILE`
(a fixture shared between CI jobs), and `msi state reset` (start over).

The export file is JSON: the state file's TOML text as it is on disk, every private key file the
state names (PEM, private key then certificate) and the activity log. It holds private keys, so
it is written owner-only (0600, by the atomic writer) and never printed.

An import is validated whole before anything changes (the TOML parses and validates as a state,
every key the state names is present and proves its name, as the key ring checks it); then, with
the state lock held, the keys are written first, the state file is replaced atomically, and only
then are the keys and caches of the old state removed. A reader sees the old state or the new
one, never a state without its keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from msi_cli import __version__
from msi_cli.core.model import State
from msi_cli.errors import MsiError, NotFound, StateError, deep_input
from msi_cli.store import codec, files
from msi_cli.store.statefile import StateFile, _key_names

FORMAT = "msi-cli state export"
VERSION = 1
MAX_EXPORT_BYTES = files.MAX_STATE_BYTES * 4  # the state, its keys and its log


def export_state(sf: StateFile, dest: Path) -> dict[str, Any]:
    """Write the current state (created fresh first if missing) and its keys to `dest`, 0600."""
    sf.read()  # a missing state is created, as every command does
    with files.exclusive_lock(sf.lock_path):
        raw = files.read_bytes(sf.path)
        if raw is None:
            raise StateError(f"state file {sf.path} disappeared while exporting it")
        state = _parse(raw, str(sf.path))
        keys = {}
        for name in sorted(_key_names(state)):
            pem = files.read_private(sf.keys_dir / f"{name}.pem", "key file", 64 * 1024)
            if pem is None:
                raise StateError(f"key {name} is missing from the key store {sf.keys_dir}; nothing was exported")
            keys[name] = pem.decode("ascii")
        log = files.read_private(sf.log_path, "activity log") or b""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "msiVersion": __version__,
        "state": raw.decode("utf-8"),
        "keys": keys,
        "activityLog": log.decode("utf-8", "backslashreplace"),
    }
    if not dest.parent.is_dir():
        raise StateError(f"cannot write {dest}: folder {dest.parent} does not exist")
    if dest.is_dir():
        raise StateError(f"cannot write {dest}: it is a folder")
    _check_export_path(sf, dest)
    files.write_atomic(dest, json.dumps(doc, indent=1).encode("utf-8"))
    return _summary(state, dest, len(keys))


def import_state(sf: StateFile, src: Path) -> dict[str, Any]:
    """Replace the state with the one exported to `src`, after validating all of it."""
    state_raw, keys, log = _read_export(src)
    state = _parse(state_raw, str(src))
    needed = _key_names(state)
    missing = sorted(needed - set(keys))
    if missing:
        raise StateError(f"{src}: the state names key {missing[0]}, which the file does not hold; nothing was changed")
    for name in needed:
        _check_key(src, name, keys[name])
    files.check_state_path(sf.path)
    files.private_dir(sf.path.parent)
    files.private_dir(sf.private, tighten=True)
    with files.exclusive_lock(sf.lock_path):
        _check_replaceable(sf)
        files.private_dir(sf.keys_dir, tighten=True)
        for name in sorted(needed):
            files.write_atomic(sf.keys_dir / f"{name}.pem", keys[name])
        files.write_atomic(sf.path, state_raw)  # the change: what follows was checked above
        _forget_derived(sf)
        _remove_keys_except(sf, needed)
        files.write_atomic(sf.log_path, log)
    return _summary(state, sf.path, len(needed))


def reset_state(sf: StateFile) -> None:
    """Remove the state file, its keys, log and caches (a fresh state is made on next use). The
    lock, the local CA and a running server's record stay."""
    files.check_state_path(sf.path)
    if not sf.path.exists() and not leftovers(sf):
        return
    files.private_dir(sf.private, tighten=True)
    with files.exclusive_lock(sf.lock_path):
        _check_replaceable(sf)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sf.path)
        _forget_derived(sf)
        _remove_keys_except(sf, set())
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sf.log_path)


def leftovers(sf: StateFile) -> bool:
    """Whether a state's keys, log or caches are still beside it (its file deleted by hand)."""
    keys = sf.keys_dir.is_dir() and any(sf.keys_dir.iterdir())
    return keys or any(p.exists() for p in (sf.log_path, sf.tokens_path, *_derived(sf)))


# ---- helpers ---------------------------------------------------------------------------------------


def _summary(state: State, path: Path, keys: int) -> dict[str, Any]:
    return {
        "path": str(path),
        "tenants": len(state.tenants),
        "subscriptions": len(state.subscriptions),
        "resources": len(state.resources),
        "identities": len(state.identities),
        "roleAssignments": len(state.role_assignments),
        "keys": keys,
    }


def _read_export(src: Path) -> tuple[bytes, dict[str, bytes], bytes]:
    try:
        raw = files.read_input(src, "a state export", MAX_EXPORT_BYTES)  # a regular file: never a FIFO that blocks
    except NotFound:
        raise NotFound(f"{src}: no such file; nothing was changed") from None  # exit 3, as msi apply's
    except MsiError as exc:
        raise StateError(f"cannot read {exc.message}; nothing was changed") from None
    try:
        with deep_input():
            doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise StateError(f"{src} is not a file written by 'msi state export' (not JSON); nothing was changed") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError(f"{src} is not a file written by 'msi state export'; nothing was changed")
    if type(doc.get("version")) is not int or doc.get("version") != VERSION:  # not True, not 1.0
        raise StateError(f"{src} is export format version {doc.get('version')!r}, which this msi cannot read; nothing was changed")
    text, keys, log = doc.get("state"), doc.get("keys"), doc.get("activityLog", "")
    if not isinstance(text, str) or not isinstance(keys, dict) or not isinstance(log, str):
        raise StateError(f"{src}: 'state', 'keys' or 'activityLog' has the wrong type; nothing was changed")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
        raise StateError(f"{src}: every key must be a PEM text; nothing was changed")
    try:
        return text.encode("utf-8"), {k: v.encode("ascii") for k, v in keys.items()}, log.encode("utf-8")
    except UnicodeEncodeError:
        raise StateError(f"{src}: a key or the state is not valid text; nothing was changed") from None


def _parse(raw: bytes, where: str) -> State:
    """The state in `raw`, validated as the state file is when read."""
    try:
        _, doc = codec.decode(raw)
        return codec.load(codec.upgrade(doc))
    except codec.InvalidDocument as exc:
        raise StateError(f"{where}: the state is invalid ({exc.message}); nothing was changed") from None


def _check_key(src: Path, name: str, pem: bytes) -> None:
    """The key proves its name as the key ring checks it: its certificate's thumbprint."""
    from msi_cli import crypto

    if "/" in name or name.startswith(".") or len(pem) > 64 * 1024:
        raise StateError(f"{src}: key '{name}' is not a key msi can store; nothing was changed")
    try:
        der = crypto.check_key_file(pem)
    except ValueError as exc:
        raise StateError(f"{src}: key {name} cannot be used ({exc}); nothing was changed") from None
    thumbprint = crypto.sha1_thumbprint_hex(der) if len(name) == 40 else crypto.sha1_thumbprint_b64url(der)
    if thumbprint != name:
        raise StateError(f"{src}: key {name} holds a certificate whose thumbprint is not its name; nothing was changed")


def _check_export_path(sf: StateFile, dest: Path) -> None:
    """An export goes to a file of its own: not the state, nothing in its private folder (the log,
    the lock, a key), and not a device, pipe or socket (a symbolic link is replaced, not followed)."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        st = None
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise StateError(f"cannot write {dest}: it is not a regular file; nothing was exported")
    if st is not None and stat.S_ISLNK(st.st_mode):  # a link is replaced; one that names no plain file is no place for keys
        try:
            named = os.stat(dest)
        except OSError:
            named = None  # dangling: replaced by the export
        special = os.readlink(dest).startswith(("/dev/", "/proc/")) or dest.parent.resolve() in (Path("/dev"), Path("/proc"))
        if special or (named is not None and not stat.S_ISREG(named.st_mode)):
            raise StateError(f"cannot write {dest}: it is a link to a device, pipe or terminal (the keys would go there, or "
                             "replace the link); nothing was exported", hint="export to a file of its own, e.g. fixture.json")
    target, private = dest.resolve(), sf.private.resolve()
    if target == sf.path.resolve() or target == private or private in target.parents:
        raise StateError(f"cannot write {dest}: it is the state itself or one of its private files; nothing was exported",
                         hint="export to a file of its own, e.g. fixture.json")


def _check_replaceable(sf: StateFile) -> None:
    """Before an import or reset changes anything: the files it replaces or removes beside the
    state are files (or absent), and the key folder is a folder of msi's, not a link to elsewhere,
    so that it cannot fail, or reach outside the state, half way."""
    for path in (sf.log_path, *_derived(sf)):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            raise StateError(f"{path} is not a regular file; nothing was changed", hint="move it away; msi makes it again")
    files.check_private_dir(sf.keys_dir)


def _derived(sf: StateFile) -> tuple[Path, ...]:
    """Caches of a state: the parse cache (and the record-text cache older versions kept beside
    it) and the platform's cached tokens."""
    return sf.cache_path, sf.private / "cache-text", sf.tokens_path


def _forget_derived(sf: StateFile) -> None:
    """Remove the caches of the old state."""
    for path in _derived(sf):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _remove_keys_except(sf: StateFile, keep: set[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(sf.keys_dir):
            name = entry.name
            if name.endswith(".pem") and name[: -len(".pem")] not in keep or name == ".pending":
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
