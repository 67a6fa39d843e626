"""The stamp's helpers (store/statefile.py): the writer's clock, the sealed private files, the stat a
stamp names, and the key files a state uses."""

from __future__ import annotations

import binascii
import marshal
import os
import sys
import time
from typing import Any

from msi_cli.core.model import State
from msi_cli.store.lazycoll import LazyCollection

_COARSE_CLOCK = 5  # Linux's CLOCK_REALTIME_COARSE: the clock file times are taken from, a tick at a time


def _coarse_now_ns() -> int | None:
    """Now, on the clock file times are taken from (Linux's CLOCK_REALTIME_COARSE: a time is the
    start of its tick); None where that clock is unknown (not Linux): writers then leave stamping
    to readers, after STAMP_SETTLED_NS."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return time.clock_gettime_ns(_COARSE_CLOCK)
    except OSError:
        return None


_SEAL = b"msi\x01"


def seal(blob: Any) -> bytes:
    """A private cache file's bytes: a mark, the CRC-32 of the rest, the marshalled blob. The
    CRC (2 ms for the 4 MB cache of 10,000 resources) finds a damaged file, which would otherwise
    unmarshal into rows that no longer fit together."""
    payload = marshal.dumps(blob)
    return _SEAL + binascii.crc32(payload).to_bytes(4, "big") + payload


def unseal(raw: bytes) -> Any:
    """The blob `seal` wrote, or None for a file that is damaged or not one."""
    if raw[:4] != _SEAL or int.from_bytes(raw[4:8], "big") != binascii.crc32(memoryview(raw)[8:]):
        return None
    try:
        return marshal.loads(memoryview(raw)[8:])
    except (EOFError, ValueError, TypeError):
        return None


def _stat_key(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _changed_ns(st: os.stat_result) -> int:
    """When the file last changed, as its times say."""
    return max(st.st_mtime_ns, st.st_ctime_ns)


def _whole_seconds(st: os.stat_result) -> bool:
    """Whether the filesystem keeps whole seconds (ext3, FAT, some network ones): a tick of a second."""
    return st.st_mtime_ns % 1_000_000_000 == 0 or st.st_ctime_ns % 1_000_000_000 == 0


def _key_names(state: State, changed_only: bool = False) -> set[str]:
    """The key files the state uses: tenants' signing keys, identities' certificates and the keys
    of the OIDC issuers msi plays. `changed_only`: of the principals, only those a transaction
    handed out or added (the others are as read, and name no key it made)."""
    names = {k.kid for t in state.tenants.values() for k in t.signing_keys}
    principals = state.principals
    built = principals.built() if changed_only and isinstance(principals, LazyCollection) else None
    names.update(c.thumbprint for p in (principals.values() if built is None else built.values()) for c in p.key_credentials)
    names.update(i.kid for i in state.issuers.values())
    return names
