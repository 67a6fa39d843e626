"""The key files msi writes, checked and used to sign in plain Python: no `cryptography` import.

A fresh token checks two key files (the identity's certificate, the tenant's signing key), signs
and verifies the identity's ES256 client assertion and signs the RS256 token. With `cryptography`
that costs its import (tens of ms, more than the work); here it is integer arithmetic on the few
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
from msi_cli.store.quickcert import N, P, Jacobian, _add, _double

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


def _enc(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


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


def es256(key: ECKey, message: bytes) -> bytes:
    """ECDSA P-256 with SHA-256, a fresh random nonce, as JWS encodes it: r || s, 32 bytes each."""
    e = int.from_bytes(hashing.sha256(message).digest(), "big")
    while True:
        k = hashing.randbelow(N - 1) + 1
        point = _affine(_base_multiply(k))
        r = point[0] % N if point else 0
        s = pow(k, -1, N) * (e + r * key.d) % N
        if r and s:
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def es256_verify(public: ECPublic, message: bytes, signature: bytes) -> bool:
    """Whether `signature` (r || s) is ECDSA P-256 / SHA-256 of `message` by the key `public`,
    a point of the curve (as `ec_public` returns it)."""
    if len(signature) != 64:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < N and 0 < s < N):
        return False
    e = int.from_bytes(hashing.sha256(message).digest(), "big")
    w = pow(s, -1, N)
    point = _affine(_add(_base_multiply(e * w % N), _multiply(r * w % N, public)))
    return point is not None and point[0] % N == r


# ---- P-256 scalar multiplication (the curve's arithmetic is quickcert's) ----------------------------

# COMB[j] = the sum of 2^(64 i) * G over the bits i of j (fixed-base comb, 4 rows of 64 bits): k*G
# then takes 64 doublings and at most 64 additions, where a 4-bit window takes 256 and 64. The
# tests recompute the table from G.
COMB: tuple[tuple[int, int], ...] = (
    (0, 0),  # unused: j = 0 adds nothing
    (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296, 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5),
    (0x0FA822BC2811AAA58492592E326E25DE29493BAAAD651F7E90E75CB48E14DB63, 0xBFF44AE8F5DBA80D6F4AD4BCB3DF188B34B1A65050FE82F5E41124545F462EE7),
    (0x300A4BBC89D6726FB257C0DE95E02789E96C98FD0D35F1FA93391CE2097992AF, 0x72AAC7E0D09B46447F1DDB25FF1E3C6F5BB1EEADA9D806A5AA54A291C08127A0),
    (0x447D739BEEDB5E67FB982FD588C6766EFC35FF7DC297EAC357C84FC9D789BD85, 0x2D4825AB834131EEE12E9D953A4AAFF73D349B95A7FAE5000C7E33C972E25B32),
    (0xEF9519328A9C72FFDDC6068BB91DFC60EF7FBD2B1A0A11B713949C932A1D367F, 0x611E9FC37DBB2C9BC1EE9807022C219C23183B0895CA1740196035A77376D8A8),
    (0x550663797B51F5D87DEA6482E11238BF2936DF5EC6C9BC36CAE2B1920B57F4BC, 0x157164848AECB8510AFA40018D9D50E59FB3D576DBDEFBE144FFE216348A964C),
    (0xEB5D7745B21141EAA2E8F483F43E43917CCD84E70D715F26E48ECAFFFC5CDE01, 0xEAFD72EBDBECC17B0990E6A158006CEE85F22CFE2844B645CAC917E2731A3479),
    (0xA6D39677A78492762736FF8344315FC596439591A3C6B94A6CF20FFB313728BE, 0x674F84749B0B881666B8BABD2D27ECDF824A920C2284059BF2BAB833C357F5F4),
    (0x4E769E7672C9DDAD31855F7DB8C7FEDB74E02F080203A56B2DF48C04677C8A3E, 0x42B99082DE8306631EC0057206947281FB9AE16F3B9122A5A4C36165B824BBB0),
    (0x78878EF61C6CE04D7FDC1CA008A1C478D1F89E799C0CE1316EF95150DDA868B9, 0xB6CB3F5D7B72C321DE53142C12309DEF6ACE570EBDE08D4F9C62B9121FE0D976),
    (0x0C88BC4D716B1287595C5220812FFCAE5B82DD5BD54FB4967F991ED2C31A3573, 0xDD5DDEA3F3901DC618D1B5B39C04E6AA7C8181F4DF2564F33A57BF635F48ACA8),
    (0x68F344AF6B317466EFE0A423083E49F343A0A28C42BA792FE96A79FB3E72AD0C, 0x31B9C405F8540A20604ED93C24D67FF3668BFC2271F5C626CDFE17DB3FB24D4A),
    (0x4052BF4B6F461DB9663C62C3EDBAD7A00D1A10144EC39C28D36B4789A2582E7F, 0xFECF4D5190B0FC61862BE6BD71D70CC8E724F33999BFCC5B235A27C3188D25EB),
    (0x1EDDBAE2C802E41A123202A8F62BFF7AAFDF5CC08526A7A474346C10A1D4CFAC, 0x43104D86560EBCFC0C45F45273DB33A036E06B7E4C7019178FA0AF2DD603F844),
    (0xB48E26B484F7A21C0A4A46FB6AAF363A66B0DE3225C4744B9615B5110D1D78E5, 0xFAC015404D4D3DAB64131BCDFED6F668C004E4048B7B0F9806EBB0F621A01B2D),
)


def _add_affine(p1: Jacobian | None, x2: int, y2: int) -> Jacobian | None:
    """p1 + (x2, y2), the second point affine (madd-2007-bl)."""
    if p1 is None:
        return x2, y2, 1
    x1, y1, z1 = p1
    z1z1 = z1 * z1 % P
    h = (x2 * z1z1 - x1) % P
    r = 2 * (y2 * z1 * z1z1 - y1) % P
    if h == 0:
        return _double(p1) if r == 0 else None
    hh = h * h % P
    i = 4 * hh
    j = h * i % P
    v = x1 * i % P
    x3 = (r * r - j - 2 * v) % P
    y3 = (r * (v - x3) - 2 * y1 * j) % P
    z3 = ((z1 + h) * (z1 + h) - z1z1 - hh) % P
    return x3, y3, z3


def _base_multiply(k: int) -> Jacobian | None:
    """k * G, by the comb."""
    acc: Jacobian | None = None
    for i in range(63, -1, -1):
        acc = _double(acc)
        j = (k >> i & 1) | (k >> (i + 63) & 2) | (k >> (i + 126) & 4) | (k >> (i + 189) & 8)
        if j:
            acc = _add_affine(acc, *COMB[j])
    return acc


def _multiply(k: int, point: ECPublic) -> Jacobian | None:
    """k * point, with a 4-bit window."""
    table: list[Jacobian | None] = [None, (point.x, point.y, 1)]
    for _ in range(14):
        table.append(_add(table[-1], table[1]))
    acc: Jacobian | None = None
    for shift in range(252, -1, -4):
        for _ in range(4):
            acc = _double(acc)
        acc = _add(acc, table[(k >> shift) & 15])
    return acc


def _affine(point: Jacobian | None) -> tuple[int, int] | None:
    if point is None:
        return None
    x, y, z = point
    zinv = pow(z, -1, P)
    zinv2 = zinv * zinv % P
    return x * zinv2 % P, y * zinv2 * zinv % P
