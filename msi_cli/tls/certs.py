"""X.509 for msi's local CA: the CA certificate, server (leaf) certificates it signs, and facts
about a certificate that are safe to show. Imports `cryptography` only when called.

What every client accepts (Python's ssl with VERIFY_X509_STRICT, requests, aiohttp, node):
- CA: P-256, basicConstraints CA:true pathlen:0 (critical), keyUsage keyCertSign+cRLSign
  (critical), subject key identifier.
- Leaf: P-256, basicConstraints CA:false (critical), keyUsage digitalSignature (critical), extended
  key usage serverAuth, subjectAltName with the DNS names and IP addresses, subject and authority
  key identifiers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from datetime import datetime, UTC
from typing import TYPE_CHECKING

from msi_cli.errors import InvalidArgument

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _when(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def split_hosts(hosts: list[str]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) from host names as given on the command line, de-duplicated in
    order; raises InvalidArgument for anything that is neither."""
    dns: list[str] = []
    ips: list[str] = []
    for host in hosts:
        value = host.strip()
        if value.startswith("[") and value.endswith("]"):
            value = value[1:-1]
        try:
            ip = str(ipaddress.ip_address(value))
        except ValueError:
            ip = None
        if ip is not None:
            if ip not in ips:
                ips.append(ip)
            continue
        name = value.lower().rstrip(".")
        labels = name.split(".")
        if labels[0] == "*" and len(labels) > 2:  # one wildcard label, leftmost, never *.tld
            labels = labels[1:]
        if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise InvalidArgument(f"'{host}' is neither a DNS name nor an IP address")
        if name not in dns:
            dns.append(name)
    return dns, ips


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def new_ca(common_name: str, start: int, end: int) -> tuple[bytes, bytes]:
    """A P-256 CA key and its self-signed certificate: (key PEM, certificate PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "msi-cli"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_when(start))
        .not_valid_after(_when(end))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem_key(key), _pem_cert(cert)


def new_leaf(ca_key_pem: bytes, ca_cert_pem: bytes, hosts: list[str], start: int, end: int) -> tuple[bytes, bytes]:
    """A P-256 server key and its certificate for `hosts` (DNS names and IP addresses), signed by
    the CA: (key PEM, certificate PEM). The validity is cut to the CA's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    dns, ips = split_hosts(hosts)
    if not dns and not ips:
        raise InvalidArgument("a server certificate needs at least one host")
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, dsa.DSAPrivateKey)):
        raise ValueError("the CA key cannot sign certificates with SHA-256")  # msi's own CA key is P-256
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    if ca_key.public_key() != ca_cert.public_key():
        raise ValueError("the CA key does not match the CA certificate")
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    end = min(end, int(ca_cert.not_valid_after_utc.timestamp()))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (dns or ips)[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_when(start))
        .not_valid_after(_when(end))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem_key(key), _pem_cert(cert)


def fingerprint_sha256(der: bytes) -> str:
    """As `openssl x509 -fingerprint -sha256` prints it: upper-case hex pairs joined by colons."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def describe(cert_pem: bytes) -> dict[str, str | list[str]]:
    """What may be shown about a certificate (never anything about its key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns, ips = san.get_values_for_type(x509.DNSName), [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    info: dict[str, str | list[str]] = {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serialNumber": f"{cert.serial_number:X}",
        "fingerprintSha256": fingerprint_sha256(cert.public_bytes(serialization.Encoding.DER)),
        "notBefore": cert.not_valid_before_utc.strftime(fmt),
        "notAfter": cert.not_valid_after_utc.strftime(fmt),
    }
    if dns or ips:
        info["dnsNames"] = dns
        info["ipAddresses"] = ips
    return info


def not_after(cert_pem: bytes) -> int:
    from cryptography import x509

    return int(x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc.timestamp())
