"""Key material: generating keys and certificates, thumbprints, JWKs. Imports `cryptography`
only when called, so commands that never touch keys start fast."""

from __future__ import annotations

import base64
from datetime import datetime, UTC
from typing import TYPE_CHECKING, Any

from msi_cli import hashing

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
    from cryptography.hazmat.primitives.hashes import SHA256

    from msi_cli import purekeys

    # The keys msi makes certificates for: RSA (token signing) and P-256 (identity certificates).
    CertKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    # A key to sign with: read in plain Python (purekeys) or loaded by `cryptography`.
    SigningKeyTypes = purekeys.RSAKey | purekeys.ECKey | PrivateKeyTypes


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _when(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _self_signed(private_key: CertKey, common_name: str, start: int, end: int, hash_alg: SHA256) -> x509.Certificate:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_when(start))
        .not_valid_after(_when(end))
        .sign(private_key, hash_alg)
    )


def _pem_bundle(private_key: CertKey, cert: x509.Certificate) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization

    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return key_pem + cert.public_bytes(serialization.Encoding.PEM), der


def new_rsa_signing_certificate(common_name: str, start: int, end: int) -> tuple[bytes, bytes]:
    """An RSA-2048 key with a self-signed certificate: (PEM of key and certificate, certificate DER)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pem_bundle(key, _self_signed(key, common_name, start, end, hashes.SHA256()))


def new_ec_certificate(common_name: str, start: int, end: int) -> tuple[bytes, bytes]:
    """A P-256 key with a self-signed certificate (cheap to make in bulk)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return _pem_bundle(key, _self_signed(key, common_name, start, end, hashes.SHA256()))


def certificate_der(pem: bytes) -> bytes:
    """The DER of the first certificate in a PEM bundle (no `cryptography` needed)."""
    text = pem.decode("ascii")
    begin = text.index("-----BEGIN CERTIFICATE-----") + len("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", begin)
    return base64.b64decode("".join(text[begin:end].split()))


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end) of the DER element at `pos`."""
    tag, length, pos = der[pos], der[pos + 1], pos + 2
    if length & 0x80:
        size = length & 0x7F
        length, pos = int.from_bytes(der[pos:pos + size], "big"), pos + size
    return tag, pos, pos + length


def certificate_spki(der: bytes) -> bytes:
    """The SubjectPublicKeyInfo of an X.509 certificate (DER), for `load_der_public_key`: reading
    it takes a few bytes of DER walking, where `cryptography.x509` costs tens of ms to import."""
    _, pos, _ = _tlv(der, 0)  # Certificate
    tag, pos, tbs_end = _tlv(der, pos)  # tbsCertificate
    fields: list[tuple[int, int, int]] = []  # (tag, start, end) of each field
    while pos < tbs_end and len(fields) < 7:
        tag, _, end = _tlv(der, pos)
        fields.append((tag, pos, end))
        pos = end
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    if len(fields) < 6 or fields[5][0] != 0x30:  # serial, signature, issuer, validity, subject, spki
        raise ValueError("not an X.509 certificate")
    return der[fields[5][1]:fields[5][2]]


# Plain Python (purekeys) serves a process's first key operations (key-file checks, signatures,
# verifications): a command that checks two key files and signs once then never imports
# `cryptography`. A process that goes on (msi serve, a bulk apply) switches to `cryptography`,
# faster per operation once it is loaded (an RS256 signature: ~8 ms here, well under 1 ms there).
PLAIN_LIMIT = 16
_plain_used = 0


def _plain() -> bool:
    """Whether this operation may be done in plain Python (and count it)."""
    global _plain_used
    if _plain_used >= PLAIN_LIMIT:
        return False
    _plain_used += 1
    return True


def check_key_file(pem: bytes) -> bytes:
    """The certificate DER of a key file (PEM private key, then certificate) after checking that
    the private key is the certificate's: same public key, and for RSA a modulus that is the
    product of the key's primes. Raises ValueError saying what is wrong. A file as msi writes it
    is checked in plain Python (purekeys: no `cryptography` import, a few ms for a P-256 key);
    anything else by `cryptography`, whose findings the messages are."""
    from msi_cli import purekeys

    found = purekeys.key_file(pem) if _plain() else None
    if found is not None:
        return found[1]
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        return _check_with_cryptography(pem)
    except UnsupportedAlgorithm as exc:  # a damaged curve or algorithm id
        raise ValueError(str(exc)) from None


def _check_with_cryptography(pem: bytes) -> bytes:
    """`check_key_file` for any file (costs well under a millisecond once imported: no primality tests)."""
    import binascii

    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_private_key

    try:
        der = certificate_der(pem)
        public = load_der_public_key(certificate_spki(der))
    except (ValueError, IndexError, UnicodeDecodeError, binascii.Error, TypeError):
        raise ValueError("it holds no readable certificate") from None
    try:
        key = load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError):
        raise ValueError("it holds no readable private key") from None
    if isinstance(key, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey):
        numbers = key.private_numbers()
        if numbers.public_numbers != public.public_numbers() or numbers.p * numbers.q != numbers.public_numbers.n:
            raise ValueError("its private key does not match its certificate")
    elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(public, ec.EllipticCurvePublicKey):
        if key.public_key().public_numbers() != public.public_numbers():
            raise ValueError("its private key does not match its certificate")
    else:
        raise ValueError("its private key and certificate are of different kinds")
    return der


def private_key(pem: bytes) -> SigningKeyTypes:
    """The private key of a key file that `check_key_file` accepted, for `jws_sign`: read in plain
    Python when msi wrote the file, else loaded by `cryptography` (without its RSA consistency
    check, ~50 ms: the file is our own, from the owner-only store, and proved its name)."""
    from msi_cli import purekeys

    key = purekeys.private_key(pem) if _plain_used < PLAIN_LIMIT else None  # counted when used
    if key is not None:
        return key
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)


_LIBRARY_KEYS: dict[Any, Any] = {}  # purekeys key -> the same key loaded by `cryptography`


def _library_key(key: purekeys.RSAKey) -> Any:
    """A key read in plain Python, as a `cryptography` key (once this process has switched)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    loaded = _LIBRARY_KEYS.get(key)
    if loaded is None:
        public = rsa.RSAPublicNumbers(key.e, key.n)
        loaded = rsa.RSAPrivateNumbers(key.p, key.q, key.d, key.dp, key.dq, key.qinv, public).private_key(unsafe_skip_rsa_key_validation=True)
        if len(_LIBRARY_KEYS) >= 64:
            _LIBRARY_KEYS.clear()
        _LIBRARY_KEYS[key] = loaded
    return loaded


def sha1_thumbprint_b64url(der: bytes) -> str:
    return b64url(hashing.sha1(der).digest())


sha1_thumbprint_hex = hashing.sha1_thumbprint_hex


def jwk_from_certificate(der: bytes, kid: str) -> dict[str, Any]:
    """The public JWK Azure publishes for a signing certificate: kty, use, kid, x5t, n, e, x5c.
    Raises ValueError for a certificate whose key is not RSA."""
    from msi_cli import purekeys

    numbers = purekeys.rsa_public(certificate_spki(der))  # in plain Python: no cryptography to import for a JWKS
    if numbers is None:  # not the canonical RSA key msi writes: cryptography decides
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import rsa

        public = x509.load_der_x509_certificate(der).public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise ValueError("not an RSA signing certificate")
        numbers = public.public_numbers().n, public.public_numbers().e
    n, e = numbers
    return {
        "kty": "RSA",
        "use": "sig",
        "kid": kid,
        "x5t": kid,
        "n": b64url_uint(n),
        "e": b64url_uint(e),
        "x5c": [base64.b64encode(der).decode("ascii")],
    }


# ---- compact JWS without PyJWT: importing PyJWT (its JWKS client pulls in urllib, http and ssl)
# costs more than signing, and minting is on the fresh-token path. Verification stays with PyJWT.


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jws_sign(header: dict[str, Any], claims: dict[str, Any], private_key: SigningKeyTypes) -> str:
    """A compact JWS signed RS256 with an RSA key (`header` carries `alg`, which must say so)."""
    import json

    from msi_cli import purekeys

    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode("utf-8"))
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    ).encode("ascii")
    if header.get("alg") != "RS256" or isinstance(private_key, purekeys.ECKey):
        raise ValueError(f"cannot sign {header.get('alg')!r} with a {type(private_key).__name__}")
    if isinstance(private_key, purekeys.RSAKey) and _plain():
        return signing_input.decode("ascii") + "." + b64url(purekeys.rs256(private_key, signing_input))
    if isinstance(private_key, purekeys.RSAKey):
        private_key = _library_key(private_key)

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError(f"cannot sign 'RS256' with a {type(private_key).__name__}")
    return signing_input.decode("ascii") + "." + b64url(private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()))
