"""Identity certificates without importing `cryptography`: a P-256 key and a self-signed X.509
certificate in plain Python (integer arithmetic, built-in hashes, DER written by hand).

Importing `cryptography`'s X.509 and serialisation modules costs a command that creates one
identity several times what making the certificate does; in plain Python a certificate takes a
few milliseconds. The result is what `crypto.new_ec_certificate` makes (same fields: version 3, a
random 159-bit serial, CN=<name> as issuer and subject, the validity, the P-256 key,
ecdsa-with-SHA256, no extensions) and `cryptography` reads, checks and uses it as its own. A
process that makes more than a few certificates (a bulk import) switches to `cryptography`,
which is faster per certificate once it is loaded.
"""

from __future__ import annotations

import base64
import os
import sys
from datetime import UTC, datetime

from msi_cli import hashing

# The curve P-256 (SEC 2 secp256r1, FIPS 186-4 D.1.2.3); a = -3.
P = 2**256 - 2**224 + 2**192 + 2**96 - 1
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)

QUICK_LIMIT = 4  # certificates made here by one process before `cryptography` takes over
_made = 0

Jacobian = tuple[int, int, int]


def _double(pt: Jacobian | None) -> Jacobian | None:
    if pt is None:
        return None
    x, y, z = pt
    if y == 0:
        return None
    delta = z * z % P
    gamma = y * y % P
    beta = x * gamma % P
    alpha = 3 * (x - delta) * (x + delta) % P
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y + z) * (y + z) - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return x3, y3, z3


def multiply_base(k: int) -> tuple[int, int]:
    """k * G in affine coordinates (1 <= k < N), by p256's comb (64 doublings, where a 4-bit
    window takes 256: a certificate's key and signature each cost one)."""
    from msi_cli.p256 import affine, base_multiply  # p256 is built on this module's arithmetic

    point = affine(base_multiply(k))
    if point is None:  # pragma: no cover - k is in [1, N)
        raise ValueError("the point at infinity")
    return point


def _sign(d: int, message: bytes) -> tuple[int, int]:
    """ECDSA over SHA-256, with a fresh random nonce."""
    e = int.from_bytes(hashing.sha256(message).digest(), "big")
    while True:
        k = hashing.randbelow(N - 1) + 1
        r = multiply_base(k)[0] % N
        s = pow(k, -1, N) * (e + r * d) % N
        if r and s:
            return r, s


# ---- DER -------------------------------------------------------------------------------------------

def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # room for the sign bit


def _time(epoch: int) -> bytes:
    when = datetime.fromtimestamp(epoch, tz=UTC)
    if 1950 <= when.year < 2050:  # RFC 5280 4.1.2.5: UTCTime until 2049, then GeneralizedTime
        return _tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return _tlv(0x18, f"{when.year:04d}{when.strftime('%m%d%H%M%S')}Z".encode("ascii"))


_EC_KEY = _seq(bytes.fromhex("06072a8648ce3d0201"), bytes.fromhex("06082a8648ce3d030107"))  # id-ecPublicKey, prime256v1
_ECDSA_SHA256 = _seq(bytes.fromhex("06082a8648ce3d040302"))


def _name(common_name: str) -> bytes:
    return _seq(_tlv(0x31, _seq(bytes.fromhex("0603550403"), _tlv(0x0C, common_name.encode("utf-8")))))


def _pem(label: str, der: bytes) -> bytes:
    text = base64.b64encode(der).decode("ascii")
    lines = "".join(text[i:i + 64] + "\n" for i in range(0, len(text), 64))
    return f"-----BEGIN {label}-----\n{lines}-----END {label}-----\n".encode("ascii")


def ec_certificate(common_name: str, start: int, end: int) -> tuple[bytes, bytes]:
    """A P-256 key with a self-signed certificate: (PEM of key and certificate, certificate DER)."""
    d = hashing.randbelow(N - 1) + 1
    x, y = multiply_base(d)
    point = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    name = _name(common_name)
    serial = int.from_bytes(os.urandom(20), "big") >> 1  # as x509.random_serial_number()
    tbs = _seq(
        bytes.fromhex("a003020102"),  # version 3
        _int(serial),
        _ECDSA_SHA256,
        name,
        _seq(_time(start), _time(end)),
        name,
        _seq(_EC_KEY, _tlv(0x03, b"\x00" + point)),
    )
    r, s = _sign(d, tbs)
    der = _seq(tbs, _ECDSA_SHA256, _tlv(0x03, b"\x00" + _seq(_int(r), _int(s))))
    ec_private = _seq(_int(1), _tlv(0x04, d.to_bytes(32, "big")), _tlv(0xA1, _tlv(0x03, b"\x00" + point)))
    pkcs8 = _seq(_int(0), _EC_KEY, _tlv(0x04, ec_private))
    return _pem("PRIVATE KEY", pkcs8) + _pem("CERTIFICATE", der), der


def new_ec_certificate(common_name: str, start: int, end: int) -> tuple[bytes, bytes]:
    """The certificate an identity gets: made here while `cryptography` is not loaded and only a
    few are wanted, else by `cryptography`."""
    global _made
    if _made < QUICK_LIMIT and "cryptography.x509" not in sys.modules:
        _made += 1
        return ec_certificate(common_name, start, end)
    from msi_cli import crypto

    return crypto.new_ec_certificate(common_name, start, end)
