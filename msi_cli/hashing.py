"""SHA-1, SHA-256 and uniform random integers without importing hashlib or secrets.

`hashlib` loads OpenSSL's libcrypto (2-4 ms) and `secrets` imports `random` and `hmac` with it;
msi hashes only small things (a certificate for its thumbprint, a token's signing input), for which
CPython's built-in implementations are as quick, and imported in a fraction of the time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

class Hash(Protocol):
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def sha1(data: bytes) -> Hash:
    global _sha1
    if _sha1 is None:
        try:
            from _sha1 import sha1 as found
        except ImportError:  # pragma: no cover - other interpreters
            from hashlib import sha1 as found
        _sha1 = found
    return _sha1(data)


def sha256(data: bytes) -> Hash:
    global _sha256
    if _sha256 is None:
        try:  # the built-in implementation: _sha2 from Python 3.12, _sha256 before
            from _sha2 import sha256 as found  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            try:
                from _sha256 import sha256 as found  # type: ignore[import-not-found, no-redef, unused-ignore]
            except ImportError:  # pragma: no cover - other interpreters
                from hashlib import sha256 as found  # type: ignore[assignment, unused-ignore]
        _sha256 = found
    return _sha256(data)


def blake2b_160(data: bytes) -> str:
    """BLAKE2b with a 20-byte digest, hex (the state file's digest)."""
    global _blake2b
    if _blake2b is None:
        try:
            from _blake2 import blake2b as found
        except ImportError:  # pragma: no cover - other interpreters
            from hashlib import blake2b as found
        _blake2b = found
    return _blake2b(data, digest_size=20).hexdigest()


# Each built-in module is imported when its hash is first asked for: most commands hash nothing.
_sha1: Callable[[bytes], Hash] | None = None
_sha256: Callable[[bytes], Hash] | None = None
_blake2b: Callable[..., Hash] | None = None


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
