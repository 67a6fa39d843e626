"""The hand-written crypto helpers, checked against `cryptography` and PyJWT as oracles.

msi walks certificate DER and builds compact JWS by hand to keep the token path fast; these tests
make sure the hand-written code agrees with the libraries on real keys and certificates, and
refuses what the libraries refuse.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, UTC

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples

from msi_cli import crypto

START, END = 1_800_000_000, 1_800_000_000 + 90 * 86400


def _key_and_cert(pem: bytes):
    key = serialization.load_pem_private_key(pem, password=None)
    cert = x509.load_pem_x509_certificate(pem)
    return key, cert


@pytest.fixture(scope="module")
def rsa_bundle():
    pem, der = crypto.new_rsa_signing_certificate("signer", START, END)
    return pem, der


@pytest.fixture(scope="module")
def ec_bundle():
    pem, der = crypto.new_ec_certificate("identity", START, END)
    return pem, der


@pytest.mark.parametrize("bundle", ["rsa_bundle", "ec_bundle"])
def test_certificate_der_and_spki_match_cryptography(bundle, request):
    pem, der = request.getfixturevalue(bundle)
    key, cert = _key_and_cert(pem)
    assert crypto.certificate_der(pem) == der == cert.public_bytes(serialization.Encoding.DER)
    expected_spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert crypto.certificate_spki(der) == expected_spki
    # and the certificate really belongs to the key beside it
    assert key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == expected_spki


def test_certificate_validity_and_subject(rsa_bundle):
    _, cert = _key_and_cert(rsa_bundle[0])
    assert int(cert.not_valid_before_utc.timestamp()) == START
    assert int(cert.not_valid_after_utc.timestamp()) == END
    assert cert.subject.rfc4514_string() == "CN=signer"
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048


def test_spki_of_a_certificate_with_long_fields():
    """Long-form DER lengths (a subject over 127 bytes) are walked correctly."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x" * 60),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "y" * 60),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "z" * 60)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.fromtimestamp(START, tz=UTC))
            .not_valid_after(datetime.fromtimestamp(END, tz=UTC))
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    assert crypto.certificate_spki(der) == cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("garbage", [b"\x30\x03\x02\x01\x01", b"\x30\x00", b"\x04\x02ab"])
def test_spki_refuses_what_is_not_a_certificate(garbage):
    with pytest.raises((ValueError, IndexError)):
        crypto.certificate_spki(garbage)


def test_thumbprints_are_sha1_of_der(rsa_bundle):
    _, der = rsa_bundle
    digest = hashlib.sha1(der).digest()
    assert crypto.sha1_thumbprint_hex(der) == digest.hex().upper()
    assert base64.urlsafe_b64decode(crypto.sha1_thumbprint_b64url(der) + "=") == digest
    _, cert = _key_and_cert(rsa_bundle[0])
    assert crypto.sha1_thumbprint_hex(der) == cert.fingerprint(hashes.SHA1()).hex().upper()


def test_jwk_verifies_with_pyjwt(rsa_bundle):
    pem, der = rsa_bundle
    key, _ = _key_and_cert(pem)
    kid = crypto.sha1_thumbprint_b64url(der)
    jwk = crypto.jwk_from_certificate(der, kid)
    assert jwk["kid"] == jwk["x5t"] == kid and jwk["kty"] == "RSA" and jwk["use"] == "sig"
    assert base64.b64decode(jwk["x5c"][0]) == der
    token = crypto.jws_sign({"typ": "JWT", "alg": "RS256", "kid": kid}, {"sub": "s", "n": 1}, key)
    public = jwt.PyJWK(jwk).key
    assert jwt.decode(token, public, algorithms=["RS256"], options={"verify_aud": False}) == {"sub": "s", "n": 1}


_RSA_KEY = []


def _rsa_key():
    if not _RSA_KEY:
        _RSA_KEY.append(_key_and_cert(crypto.new_rsa_signing_certificate("prop", START, END)[0])[0])
    return _RSA_KEY[0]


# Names PyJWT validates by their registered meaning (RFC 7519 4.1): a random value there is not a
# signature question.
_REGISTERED = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}


@settings(max_examples=examples(30), deadline=None)
@given(claims=st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in _REGISTERED), st.one_of(st.integers(-2**40, 2**40), st.text(max_size=20)),
                              max_size=5))
def test_rs256_tokens_verify_with_pyjwt(claims):
    """Any claims, any text (non-ASCII included): PyJWT verifies what we sign and reads the same
    header and claims back."""
    key = _rsa_key()
    header = {"typ": "JWT", "alg": "RS256", "kid": "k"}
    ours = crypto.jws_sign(header, claims, key)
    assert jwt.get_unverified_header(ours) == header
    assert jwt.decode(ours, key.public_key(), algorithms=["RS256"], options={"verify_aud": False}) == claims
    head, body, sig = ours.split(".")
    tampered = f"{head}.{crypto.b64url(json.dumps({**claims, 'tampered!': 1}).encode())}.{sig}"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, key.public_key(), algorithms=["RS256"], options={"verify_aud": False})


def test_jws_sign_refuses_mismatched_algorithm(ec_bundle, rsa_bundle):
    ec_key, _ = _key_and_cert(ec_bundle[0])
    rsa_key, _ = _key_and_cert(rsa_bundle[0])
    with pytest.raises(ValueError):
        crypto.jws_sign({"alg": "RS256"}, {}, ec_key)
    with pytest.raises(ValueError):
        crypto.jws_sign({"alg": "ES256"}, {}, rsa_key)
    with pytest.raises(ValueError):
        crypto.jws_sign({"alg": "none"}, {}, rsa_key)


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=64))
def test_b64url_round_trip(data):
    text = crypto.b64url(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert crypto.b64url_decode(text) == data


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(min_value=1, max_value=2**2048))
def test_b64url_uint_is_minimal_big_endian(value):
    raw = crypto.b64url_decode(crypto.b64url_uint(value))
    assert raw[0] != 0 and int.from_bytes(raw, "big") == value
