"""The key files msi writes, checked and used to sign in plain Python: no `cryptography` import.

A fresh token checks two key files (the identity's certificate, the tenant's signing key) and
signs the RS256 token. With `cryptography` that costs its import (tens of ms, more than the
work); here it is integer arithmetic on the few
shapes msi writes: a PKCS#8 private key (RSA, or P-256 as `quickcert` and `cryptography` write
it) followed by its self-signed certificate, each a PEM block with 64-character lines.

Anything else (a file edited by hand, damaged, another algorithm, a key whose numbers disagree)
is not understood here: the functions return None and the caller falls back to `cryptography`,
which keeps its exact messages and behaviour. Understood means canonical: the parsed numbers are
encoded again and must give back the file byte for byte.

RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 8.2), deterministic, so a signature is the one
`cryptography` makes. The arithmetic is not constant-time: these are a simulator's keys, on the
user's own machine. `crypto` decides when to use this module (a process's first operations); it
sits beside `crypto`, not in store/, because both the key ring and the core's signing use it. The
P-256 arithmetic is quickcert's.
"""

from __future__ import annotations

import base64
import math
from typing import NamedTuple

from msi_cli import hashing
from msi_cli.p256 import affine as _affine, base_multiply as _base_multiply
from msi_cli.store.quickcert import N, P, _tlv as _enc  # _tlv: DER's tag, length, value

_RSA_ALG = bytes.fromhex("300d06092a864886f70d0101010500")  # rsaEncryption, NULL parameters
_EC_ALG = bytes.fromhex("301306072a8648ce3d020106082a8648ce3d030107")  # id-ecPublicKey, prime256v1
_SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")  # DigestInfo prefix (RFC 8017 9.2)
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B  # P-256's b (a = -3)


class _Unknown(Exception):
    """Not a shape this module reads: the caller falls back to `cryptography`."""


class RSAKey(NamedTuple):
    """An RSA private key whose numbers agree (see `_rsa_key`)."""

    n: int
    e: int
    d: int
    p: int
    q: int
    dp: int
    dq: int
    qinv: int

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8


class ECPublic(NamedTuple):
    """A point of P-256."""

    x: int
    y: int


class ECKey(NamedTuple):
    """A P-256 private key and its public point."""

    d: int
    public: ECPublic


# ---- DER ------------------------------------------------------------------------------------------


def _enc_int(value: int) -> bytes:
    return _enc(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _content(der: bytes, pos: int, tag: int) -> tuple[int, int]:
    """(start, end) of the content of the element at `pos`, which must have `tag`."""
    if pos + 2 > len(der) or der[pos] != tag:
        raise _Unknown
    length, pos = der[pos + 1], pos + 2
    if length & 0x80:
        size = length & 0x7F
        if not 1 <= size <= 2:
            raise _Unknown
        length, pos = int.from_bytes(der[pos:pos + size], "big"), pos + size
    if pos + length > len(der):
        raise _Unknown
    return pos, pos + length


def _ints(der: bytes, pos: int, end: int) -> list[int]:
    """The INTEGERs from `pos` to `end` (non-negative; canonical form is checked by re-encoding)."""
    out = []
    while pos < end:
        start, pos = _content(der, pos, 0x02)
        out.append(int.from_bytes(der[start:pos], "big", signed=True))
    if pos != end or any(v < 0 for v in out):
        raise _Unknown
    return out


# ---- the key file ---------------------------------------------------------------------------------


def _pem(label: str, der: bytes) -> bytes:
    text = base64.b64encode(der).decode("ascii")
    lines = "".join(text[i:i + 64] + "\n" for i in range(0, len(text), 64))
    return f"-----BEGIN {label}-----\n{lines}-----END {label}-----\n".encode("ascii")


def _blocks(pem: bytes) -> tuple[bytes, bytes]:
    """(PKCS#8 DER, certificate DER) of a file that is exactly those two PEM blocks."""
    try:
        key_b64 = pem.split(b"-----BEGIN PRIVATE KEY-----\n", 1)[1].split(b"-----END PRIVATE KEY-----\n", 1)[0]
        cert_b64 = pem.split(b"-----BEGIN CERTIFICATE-----\n", 1)[1].split(b"-----END CERTIFICATE-----\n", 1)[0]
        key_der = base64.b64decode(b"".join(key_b64.split(b"\n")), validate=True)
        cert_der = base64.b64decode(b"".join(cert_b64.split(b"\n")), validate=True)
    except (IndexError, ValueError):
        raise _Unknown from None
    if pem != _pem("PRIVATE KEY", key_der) + _pem("CERTIFICATE", cert_der):
        raise _Unknown
    return key_der, cert_der


def _private_key(key_der: bytes) -> RSAKey | ECKey:
    start, end = _content(key_der, 0, 0x30)
    if end != len(key_der) or key_der[start:start + 3] != b"\x02\x01\x00":  # version 0
        raise _Unknown
    pos = start + 3
    if key_der.startswith(_RSA_ALG, pos):
        inner, inner_end = _content(key_der, pos + len(_RSA_ALG), 0x04)
        seq, seq_end = _content(key_der, inner, 0x30)
        numbers = _ints(key_der, seq, seq_end)
        if len(numbers) != 9 or numbers[0] != 0 or seq_end != inner_end:
            raise _Unknown
        key = _rsa_key(*numbers[1:])
        body = _enc(0x30, b"".join(_enc_int(v) for v in numbers))
        if key_der != _enc(0x30, b"\x02\x01\x00" + _RSA_ALG + _enc(0x04, body)):
            raise _Unknown
        return key
    if key_der.startswith(_EC_ALG, pos):
        inner, _ = _content(key_der, pos + len(_EC_ALG), 0x04)
        seq, _ = _content(key_der, inner, 0x30)
        secret, secret_end = _content(key_der, seq + 3, 0x04)  # after version 1
        d = int.from_bytes(key_der[secret:secret_end], "big")
        pub, pub_end = _content(key_der, secret_end, 0xA1)
        bits, bits_end = _content(key_der, pub, 0x03)
        point = key_der[bits:bits_end]
        ec_private = _enc(0x30, _enc_int(1) + _enc(0x04, d.to_bytes(32, "big")) + _enc(0xA1, _enc(0x03, point)))
        if not 1 <= d < N or len(point) != 66 or key_der != _enc(0x30, b"\x02\x01\x00" + _EC_ALG + _enc(0x04, ec_private)):
            raise _Unknown
        x, y = int.from_bytes(point[2:34], "big"), int.from_bytes(point[34:], "big")
        if point[:2] != b"\x00\x04" or _affine(_base_multiply(d)) != (x, y):  # the key's own public point is d*G
            raise _Unknown
        return ECKey(d, ECPublic(x, y))
    raise _Unknown


def _rsa_key(n: int, e: int, d: int, p: int, q: int, dp: int, dq: int, qinv: int) -> RSAKey:
    """The key, if its numbers agree: n = p*q, e*d = 1 mod lcm(p-1, q-1), and the CRT values
    derived from them, so a signature made with (p, q, dp, dq, qinv) is the one d makes."""
    if not (p > 2 and q > 2 and e > 2 and n == p * q and n.bit_length() >= 1024):
        raise _Unknown
    if e * d % math.lcm(p - 1, q - 1) != 1 or dp != d % (p - 1) or dq != d % (q - 1) or qinv * q % p != 1:
        raise _Unknown
    return RSAKey(n, e, d, p, q, dp, dq, qinv)


def rsa_public(spki: bytes) -> tuple[int, int] | None:
    """(n, e) of an RSA SubjectPublicKeyInfo in canonical DER, else None."""
    try:
        start, _ = _content(spki, 0, 0x30)
        if not spki.startswith(_RSA_ALG, start):
            raise _Unknown
        bits, _ = _content(spki, start + len(_RSA_ALG), 0x03)
        seq, seq_end = _content(spki, bits + 1, 0x30)
        numbers = _ints(spki, seq, seq_end)
    except _Unknown:
        return None
    if len(numbers) != 2 or spki != _enc(0x30, _RSA_ALG + _enc(0x03, b"\x00" + _enc(0x30, _enc_int(numbers[0]) + _enc_int(numbers[1])))):
        return None
    return numbers[0], numbers[1]


def ec_public(spki: bytes) -> ECPublic | None:
    """The point of a P-256 SubjectPublicKeyInfo (uncompressed, on the curve), else None."""
    if len(spki) != 91 or not spki.startswith(b"\x30\x59" + _EC_ALG + b"\x03\x42\x00\x04"):
        return None
    x, y = int.from_bytes(spki[27:59], "big"), int.from_bytes(spki[59:], "big")
    if x >= P or y >= P or (y * y - x * x * x + 3 * x - B) % P:
        return None
    return ECPublic(x, y)


# Key files read, by content: checking a file and then signing with it parse it once.
_READ: dict[bytes, tuple[RSAKey | ECKey, bytes] | None] = {}


def key_file(pem: bytes) -> tuple[RSAKey | ECKey, bytes] | None:
    """(private key, certificate DER) of a key file as msi writes it, whose private key is its
    certificate's; None for anything else (the caller asks `cryptography`, which says what is wrong)."""
    if pem in _READ:
        return _READ[pem]
    found = _read(pem)
    if len(_READ) >= 64:
        _READ.clear()
    _READ[pem] = found
    return found


def _read(pem: bytes) -> tuple[RSAKey | ECKey, bytes] | None:
    from msi_cli.crypto import certificate_spki

    try:
        key_der, cert_der = _blocks(pem)
        key = _private_key(key_der)
        spki = certificate_spki(cert_der)
    except (_Unknown, ValueError, IndexError):
        return None
    if isinstance(key, RSAKey) and rsa_public(spki) == (key.n, key.e):
        return key, cert_der
    if isinstance(key, ECKey) and ec_public(spki) == key.public:
        return key, cert_der
    return None


def private_key(pem: bytes) -> RSAKey | ECKey | None:
    found = key_file(pem)
    return found[0] if found else None


# ---- signatures ------------------------------------------------------------------------------------


def rs256(key: RSAKey, message: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256: EMSA-PKCS1-v1_5 encoding, then the private operation by
    CRT, checked with the public exponent."""
    size = key.size
    digest = _SHA256_INFO + hashing.sha256(message).digest()
    m = int.from_bytes(b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest, "big")
    s1, s2 = pow(m, key.dp, key.p), pow(m, key.dq, key.q)
    s = s2 + key.q * (key.qinv * (s1 - s2) % key.p)
    if pow(s, key.e, key.n) != m:  # only if p or q is not prime; OpenSSL then uses d, as here
        s = pow(m, key.d, key.n)
    return s.to_bytes(size, "big")
