"""The plain-Python identity certificate (store/quickcert.py) against `cryptography` as the
oracle: the key is a P-256 key whose public point is right, the certificate parses, verifies and
re-encodes byte for byte, and the key file passes the key ring's own check."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from msi_cli import crypto
from msi_cli.store import quickcert

START = 1_764_000_000  # 2025-11-24T16:00:00Z
DAY = 86_400


@pytest.mark.parametrize("d", [1, 2, 3, 15, 16, 2**128 + 12345, quickcert.N - 2, quickcert.N - 1])
def test_base_point_multiples_match_cryptography(d):
    numbers = ec.derive_private_key(d, ec.SECP256R1()).public_key().public_numbers()
    assert quickcert.multiply_base(d) == (numbers.x, numbers.y)


@pytest.mark.parametrize("name", ["0b9a4c1e-5d6f-4a70-9b21-3c4d5e6f7a8b", "ünïcødé", "x" * 64])
@pytest.mark.parametrize("start", [0, START, 2_524_608_000 - DAY, 4_102_444_800])  # 1970, now, across 2050, 2100
def test_certificate_is_what_cryptography_would_make(name, start):
    pem, der = quickcert.ec_certificate(name, start, start + 90 * DAY)
    cert = x509.load_der_x509_certificate(der)
    assert cert.public_bytes(serialization.Encoding.DER) == der  # canonical DER
    assert cert.version == x509.Version.v3
    assert cert.subject == cert.issuer == x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    assert cert.not_valid_before_utc.timestamp() == start
    assert cert.not_valid_after_utc.timestamp() == start + 90 * DAY
    assert 0 < cert.serial_number < 2**159
    assert len(cert.extensions) == 0
    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256
    cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    # the key file: the private key (PKCS#8, as cryptography writes it), then the certificate
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    written = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert pem == written + cert.public_bytes(serialization.Encoding.PEM)
    assert crypto.check_key_file(pem) == der
    assert crypto.certificate_der(pem) == der


def test_a_fresh_key_and_serial_each_time():
    first, second = quickcert.ec_certificate("a", START, START + DAY), quickcert.ec_certificate("a", START, START + DAY)
    assert first[0] != second[0] and first[1] != second[1]


def test_bulk_issuance_switches_to_cryptography(monkeypatch):
    """A few certificates are made in plain Python, then `cryptography` (faster per certificate
    once loaded) takes over; and at once when it is loaded already."""
    calls = []
    monkeypatch.setattr(crypto, "new_ec_certificate", lambda *a: calls.append(a) or (b"", b""))
    monkeypatch.setattr(quickcert, "_made", 0)
    monkeypatch.delitem(__import__("sys").modules, "cryptography.x509")
    for _ in range(quickcert.QUICK_LIMIT):
        assert quickcert.new_ec_certificate("a", START, START + DAY)[1] != b""
    assert calls == []
    quickcert.new_ec_certificate("a", START, START + DAY)
    assert len(calls) == 1


def test_a_key_file_naming_an_unknown_curve_is_one_error(tmp_path):
    """A damaged byte can turn the curve's id into one no library knows: the key ring reports the
    file (StateError: one error line), never an internal error."""
    import base64

    from msi_cli.errors import StateError
    from msi_cli.store.keyring import FileKeyRing

    ring = FileKeyRing(tmp_path / "state.toml.d" / "keys")
    cred = ring.new_identity_certificate("0b9a4c1e-5d6f-4a70-9b21-3c4d5e6f7a8b", START, START + DAY)
    path = ring.dir / f"{cred.thumbprint}.pem"
    key_pem, cert_pem = path.read_bytes().split(b"-----BEGIN CERTIFICATE-----")
    der = crypto.certificate_der(path.read_bytes())
    damaged = der.replace(bytes.fromhex("2a8648ce3d030107"), bytes.fromhex("2a8648ce3d3b0107"))
    assert damaged != der
    body = base64.encodebytes(damaged).decode().replace("\n", "")
    lines = "".join(body[i:i + 64] + "\n" for i in range(0, len(body), 64))
    path.write_bytes(key_pem + f"-----BEGIN CERTIFICATE-----\n{lines}-----END CERTIFICATE-----\n".encode())
    with pytest.raises(StateError, match="cannot be used"):
        FileKeyRing(ring.dir).certificate_pem(cred.thumbprint)
