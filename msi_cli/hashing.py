"""SHA-1, SHA-256 and uniform random integers without importing hashlib or secrets.

`hashlib` loads OpenSSL's libcrypto (2-4 ms) and `secrets` imports `random` and `hmac` with it;
msi hashes only small things (a certificate for its thumbprint, a token's signing input), for which
CPython's built-in implementations are as quick, and imported in a fraction of the time.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Protocol

class Hash(Protocol):
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def _builtin(name: str, *sources: str) -> Callable[..., Hash]:
    """The hash `name` from the first module of `sources` that has it (a built-in one before
    hashlib), imported when first asked for: most commands hash nothing."""
    found = _found.get(name)
    if found is None:
        for module in sources:
            try:
                found = getattr(importlib.import_module(module), name)
                break
            except (ImportError, AttributeError):
                continue
        else:  # pragma: no cover - every interpreter has hashlib
            raise ImportError(f"no implementation of {name}")
        _found[name] = found
    return found


_found: dict[str, Callable[..., Hash]] = {}


def sha1(data: bytes) -> Hash:
    return _builtin("sha1", "_sha1", "hashlib")(data)


def sha256(data: bytes) -> Hash:
    return _builtin("sha256", "_sha2", "_sha256", "hashlib")(data)  # _sha2 from Python 3.12, _sha256 before


def sha1_thumbprint_hex(der: bytes) -> str:
    """A certificate's thumbprint as Azure lists it: the SHA-1 of its DER, upper-case hex."""
    return sha1(der).hexdigest().upper()


def blake2b_160(data: bytes) -> str:
    """BLAKE2b with a 20-byte digest, hex (the state file's digest)."""
    return _builtin("blake2b", "_blake2", "hashlib")(data, digest_size=20).hexdigest()


def randbelow(n: int) -> int:
    """A uniformly random integer in [0, n), from os.urandom, as secrets.randbelow gives it."""
    if n <= 0:
        raise ValueError("upper bound must be positive")
    bits = n.bit_length()
    size = (bits + 7) // 8
    while True:
        value = int.from_bytes(os.urandom(size), "big") >> (size * 8 - bits)
        if value < n:
            return value
