"""Key files checked and used in plain Python (msi_cli/purekeys.py), against `cryptography` and
PyJWT as oracles: RS256 signatures byte for byte, P-256 keys read as cryptography reads them, the key-file check accepting
what msi writes and nothing `cryptography` would refuse, and a fresh `msi token` that never
imports `cryptography`."""

from __future__ import annotations

import base64
import functools
import json
import random
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

import conftest
from conftest import examples
from msi_cli import crypto, p256, purekeys
from msi_cli.errors import StateError
from msi_cli.store import quickcert
from msi_cli.store.keyring import FileKeyRing

START, END = 1_800_000_000, 1_800_000_000 + 90 * 86400


def _pem(label: str, der: bytes) -> bytes:
    text = base64.b64encode(der).decode()
    return (f"-----BEGIN {label}-----\n" + "".join(text[i:i + 64] + "\n" for i in range(0, len(text), 64))
            + f"-----END {label}-----\n").encode()


def _split(pem: bytes) -> tuple[bytes, bytes]:
    at = pem.index(b"-----BEGIN CERTIFICATE-----")
    return pem[:at], pem[at:]


@functools.cache
def _loaded(pem: bytes):
    return serialization.load_pem_private_key(pem, password=None)


@pytest.fixture(autouse=True)
def _plain_python_throughout(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process has made many key operations already: let plain Python do all of these."""
    monkeypatch.setattr(crypto, "PLAIN_LIMIT", 10**9)


@pytest.fixture(scope="module")
def rsa_files() -> list[bytes]:
    """Signing-key files as msi writes them: four keys of the suite's pool and a 3072-bit one."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rsa, "generate_private_key", conftest._pooled_rsa_key)
        files = [crypto.new_rsa_signing_certificate(f"sts.windows.net/t{i}", START, END)[0] for i in range(4)]
    big = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    cert = crypto._self_signed(big, "sts.windows.net/big", START, END, hashes.SHA256())
    files.append(crypto._pem_bundle(big, cert)[0])
    assert len({_split(f)[1] for f in files}) == len(files)
    return files


@pytest.fixture(scope="module")
def ec_files() -> list[bytes]:
    """Identity-certificate files, as quickcert and as `cryptography` make them."""
    return [quickcert.ec_certificate("app-a", START, END)[0], crypto.new_ec_certificate("app-b", START, END)[0]]


# ---- RS256 ---------------------------------------------------------------------------------------


def test_rs256_is_byte_identical_to_cryptography_and_pyjwt(rsa_files):
    rng = random.Random(15)
    for pem in rsa_files:
        fast, lib = purekeys.private_key(pem), _loaded(pem)
        assert isinstance(fast, purekeys.RSAKey)
        assert (fast.n, fast.e, fast.d, fast.p, fast.q) == (
            lib.private_numbers().public_numbers.n, lib.private_numbers().public_numbers.e, lib.private_numbers().d,
            lib.private_numbers().p, lib.private_numbers().q)
        # the message is hashed first: past the block edges, more sizes only repeat the same work
        for size in [0, 1, 32, 55, 56, 64, 255, 256, 1000, *(rng.randrange(4096) for _ in range(3))]:
            message = rng.randbytes(size)
            ours = purekeys.rs256(fast, message)
            assert ours == lib.sign(message, padding.PKCS1v15(), hashes.SHA256())
            assert ours == RSAAlgorithm(RSAAlgorithm.SHA256).sign(message, lib)


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claims=st.dictionaries(st.sampled_from(["a", "b", "oid", "xms_mirid"]), st.one_of(st.integers(), st.text(max_size=30)), max_size=4))
def test_tokens_signed_in_plain_python_are_the_library_s_and_verify_with_pyjwt(rsa_files, claims):
    pem = rsa_files[0]
    header = {"typ": "JWT", "alg": "RS256", "kid": "k", "x5t": "k"}
    ours = crypto.jws_sign(header, claims, crypto.private_key(pem))
    assert ours == crypto.jws_sign(header, claims, _loaded(pem))
    assert jwt.decode(ours, _loaded(pem).public_key(), algorithms=["RS256"]) == claims


def test_a_key_with_numbers_that_disagree_is_left_to_cryptography(rsa_files):
    """A PKCS#8 whose d, CRT values or primes disagree is not read here: the check falls back
    (cryptography reports p*q != n; it accepts a wrong d as before) and so does signing."""
    numbers = _loaded(rsa_files[0]).private_numbers()
    n, e, d, p, q = numbers.public_numbers.n, numbers.public_numbers.e, numbers.d, numbers.p, numbers.q
    cert = _split(rsa_files[0])[1]

    def file(*values: int) -> bytes:
        body = purekeys._enc(0x30, b"".join(purekeys._enc_int(v) for v in (0, *values)))
        key = purekeys._enc(0x30, purekeys._enc_int(0) + purekeys._RSA_ALG + purekeys._enc(0x04, body))
        return _pem("PRIVATE KEY", key) + cert

    good = file(n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))
    assert good == rsa_files[0] and purekeys.key_file(good) is not None
    for bad in (file(n, e, d + 1, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p)),
                file(n, e, d, p, q, d % (p - 1) + 1, d % (q - 1), pow(q, -1, p)),
                file(n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p) + 1)):
        assert purekeys.key_file(bad) is None
        assert crypto.check_key_file(bad) == crypto.certificate_der(bad)  # as before: cryptography's check
        assert not isinstance(crypto.private_key(bad), purekeys.RSAKey)
    swapped = file(n, e, d, q, p, d % (q - 1), d % (p - 1), pow(p, -1, q))  # p and q exchanged: still consistent
    assert isinstance(crypto.private_key(swapped), purekeys.RSAKey)
    assert purekeys.rs256(crypto.private_key(swapped), b"m") == _loaded(rsa_files[0]).sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    broken = file(n, e, d, p, q + 2, d % (p - 1), d % (q + 1), pow(q + 2, -1, p))
    assert purekeys.key_file(broken) is None
    with pytest.raises(ValueError, match="does not match its certificate"):
        crypto.check_key_file(broken)


# ---- ES256 ---------------------------------------------------------------------------------------


def test_a_p256_key_file_reads_as_cryptography_reads_it(ec_files):
    """The identity's key file: the private value and the certificate's point are cryptography's,
    and the point is d*G (what proves the key is the certificate's, in place of a signature)."""
    for pem in ec_files:
        fast, lib = purekeys.private_key(pem), _loaded(pem)
        assert isinstance(fast, purekeys.ECKey) and fast.d == lib.private_numbers().private_value
        point = purekeys.ec_public(crypto.certificate_spki(crypto.certificate_der(pem)))
        assert point == fast.public == (lib.public_key().public_numbers().x, lib.public_key().public_numbers().y)
        assert p256.affine(p256.base_multiply(fast.d)) == point


def _double_and_add(k: int) -> tuple[int, int] | None:
    """k * G the schoolbook way, in affine coordinates: the reference for the comb."""
    def add(a, b):
        if a is None:
            return b
        if a[0] == b[0] and (a[1] + b[1]) % quickcert.P == 0:
            return None
        if a == b:
            slope = 3 * (a[0] * a[0] - 1) * pow(2 * a[1], -1, quickcert.P)
        else:
            slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, quickcert.P)
        x = (slope * slope - a[0] - b[0]) % quickcert.P
        return x, (slope * (a[0] - x) - a[1]) % quickcert.P

    acc, addend = None, quickcert.G
    while k:
        if k & 1:
            acc = add(acc, addend)
        addend, k = add(addend, addend), k >> 1
    return acc


def test_the_comb_is_g_s_multiples_and_multiplies_as_double_and_add_does():
    for j in range(1, 16):
        assert p256.COMB[j] == _double_and_add(sum(1 << (64 * i) for i in range(4) if j >> i & 1))
    rng = random.Random(64)
    edges = [1, 2, 15, 16, 2**64 - 1, 2**64, 2**128 + 1, 2**192, 2**255, quickcert.N - 2, quickcert.N - 1]
    for k in edges + [rng.randrange(1, quickcert.N) for _ in range(30)]:
        assert p256.affine(p256.base_multiply(k)) == quickcert.multiply_base(k) == _double_and_add(k)
    assert p256.base_multiply(quickcert.N) is None  # the group's order: the point at infinity


def test_a_point_off_the_curve_is_not_a_public_key(ec_files):
    spki = crypto.certificate_spki(crypto.certificate_der(ec_files[0]))
    assert purekeys.ec_public(spki) is not None
    off = spki[:-1] + bytes([spki[-1] ^ 1])
    assert purekeys.ec_public(off) is None


def test_the_wrong_algorithm_for_a_key_is_refused(rsa_files, ec_files):
    with pytest.raises(ValueError):
        crypto.jws_sign({"alg": "ES256"}, {}, crypto.private_key(rsa_files[0]))
    with pytest.raises(ValueError):
        crypto.jws_sign({"alg": "RS256"}, {}, crypto.private_key(ec_files[0]))
    with pytest.raises(ValueError):
        crypto.jws_sign({"alg": "none"}, {}, crypto.private_key(rsa_files[0]))


def test_a_process_switches_to_cryptography_after_its_first_operations(rsa_files, ec_files, monkeypatch):
    """msi serve signs for hours: after PLAIN_LIMIT operations in plain Python, `cryptography`
    (loaded once, faster per signature) takes over, with the same keys and the same signatures."""
    monkeypatch.setattr(crypto, "PLAIN_LIMIT", 3)
    monkeypatch.setattr(crypto, "_plain_used", 0)
    calls = []
    real_rs256 = purekeys.rs256
    monkeypatch.setattr(purekeys, "rs256", lambda *a: calls.append(a) or real_rs256(*a))
    assert crypto.check_key_file(rsa_files[0]) == crypto.certificate_der(rsa_files[0])  # 1
    key = crypto.private_key(rsa_files[0])
    assert isinstance(key, purekeys.RSAKey)
    first = [crypto.jws_sign({"alg": "RS256"}, {"n": n}, key) for n in range(2)]  # 2, 3
    assert len(calls) == 2
    again = [crypto.jws_sign({"alg": "RS256"}, {"n": n}, key) for n in range(2)]  # by cryptography
    assert len(calls) == 2 and again == first
    assert isinstance(crypto._LIBRARY_KEYS[key], rsa.RSAPrivateKey)
    assert not isinstance(crypto.private_key(rsa_files[1]), purekeys.RSAKey)


# ---- the key-file check ----------------------------------------------------------------------------


def test_every_file_msi_writes_is_read_here(rsa_files, ec_files, tmp_path):
    for pem in (*rsa_files, *ec_files):
        found = purekeys.key_file(pem)
        assert found is not None
        assert found[1] == crypto._check_with_cryptography(pem) == crypto.check_key_file(pem)
    ring = FileKeyRing(tmp_path / "state.toml.d" / "keys")
    kid = ring.new_signing_key("t", START, END, END).kid
    thumb = ring.new_identity_certificate("app", START, END).thumbprint
    issuer = ring.new_issuer_key("iss", START, END)
    for name in (kid, thumb, issuer):
        assert purekeys.key_file((ring.dir / f"{name}.pem").read_bytes()) is not None


def _refused(tmp_path: Path, name: str, pem: bytes) -> str:
    ring = FileKeyRing(tmp_path / "state.toml.d" / "keys")
    ring.new_identity_certificate("app", START, END)  # the key store's folders, as msi makes them
    path = ring.dir / f"{name}.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    fresh = FileKeyRing(ring.dir)  # a new process: nothing verified yet
    with pytest.raises(StateError) as info:
        fresh.signing_key_pem(name) if len(name) == 27 else fresh.certificate_pem(name)
    return info.value.message


@pytest.mark.parametrize("case, message", [
    ("certificate swapped", "cannot be used: its private key does not match its certificate"),
    ("private key swapped", "cannot be used: its private key does not match its certificate"),
    ("whole file swapped", "holds a certificate whose thumbprint is not"),
    ("truncated", "cannot be used: it holds no readable private key"),
    ("garbage", "cannot be used: it holds no readable certificate"),
    ("an EC key where RSA is expected", "cannot be used: its private key and certificate are of different kinds"),
    ("an EC file where RSA is expected", "holds a certificate whose thumbprint is not"),
])
def test_a_damaged_or_replaced_file_gets_today_s_message(rsa_files, ec_files, tmp_path, case, message):
    original = rsa_files[0]
    name = crypto.sha1_thumbprint_b64url(crypto.certificate_der(original))
    key, cert = _split(original)
    forged = {
        "certificate swapped": key + _split(rsa_files[1])[1],
        "private key swapped": _split(rsa_files[1])[0] + cert,
        "whole file swapped": rsa_files[1],
        "truncated": key[:200] + b"\n-----END PRIVATE KEY-----\n" + cert,
        "garbage": b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
        "an EC key where RSA is expected": _split(ec_files[0])[0] + cert,
        "an EC file where RSA is expected": ec_files[0],
    }[case]
    if case == "certificate swapped":
        name = crypto.sha1_thumbprint_b64url(crypto.certificate_der(forged))
    valid = case in ("whole file swapped", "an EC file where RSA is expected")  # a good file, under another's name
    assert (purekeys.key_file(forged) is not None) == valid
    text = _refused(tmp_path, name, forged)
    assert message in text, text


def test_other_encodings_of_a_good_key_still_work_through_cryptography(rsa_files, ec_files):
    """Not the shape msi writes (the traditional RSA format, CRLF lines, a trailing comment):
    not read here, and `cryptography` accepts them as before."""
    lib = _loaded(rsa_files[0])
    cert = _split(rsa_files[0])[1]
    traditional = lib.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()) + cert
    for pem in (traditional, rsa_files[0].replace(b"\n", b"\r\n"), rsa_files[0] + b"# note\n", ec_files[0].replace(b"\n", b"\r\n")):
        assert purekeys.key_file(pem) is None
        assert crypto.check_key_file(pem) == crypto.certificate_der(pem)
        assert not isinstance(crypto.private_key(pem), purekeys.RSAKey | purekeys.ECKey)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 2), part=st.sampled_from(["key", "cert"]), at=st.integers(0, 10**6), value=st.integers(0, 255))
def test_a_damaged_byte_is_never_accepted_where_cryptography_refuses(rsa_files, ec_files, which, part, at, value):
    """Any one byte of the key's or the certificate's DER changed (the PEM still well formed):
    what the plain-Python check accepts, `cryptography` accepts too, with the same certificate
    and the same key."""
    pem = (rsa_files[0], ec_files[0], ec_files[1])[which]
    key_der = base64.b64decode(b"".join(_split(pem)[0].splitlines()[1:-1]))
    cert_der = crypto.certificate_der(pem)
    if part == "key":
        key_der = key_der[:at % len(key_der)] + bytes([value]) + key_der[at % len(key_der) + 1:]
    else:
        cert_der = cert_der[:at % len(cert_der)] + bytes([value]) + cert_der[at % len(cert_der) + 1:]
    damaged = _pem("PRIVATE KEY", key_der) + _pem("CERTIFICATE", cert_der)
    found = purekeys.key_file(damaged)
    if found is None:
        return
    assert crypto._check_with_cryptography(damaged) == found[1] == cert_der
    lib = _loaded(damaged)
    if isinstance(found[0], purekeys.RSAKey):
        assert found[0].d == lib.private_numbers().d and found[0].n == lib.private_numbers().public_numbers.n
    else:
        assert isinstance(lib, ec.EllipticCurvePrivateKey) and found[0].d == lib.private_numbers().private_value


# ---- the installed msi -----------------------------------------------------------------------------

_PROBE = (
    "import sys; from msi_cli.cli import main; sys.argv = ['msi', 'token', 'vm1', '--audience', sys.argv[1], '-o', 'json']\n"
    "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
    "print(sorted(m for m in sys.modules if m.startswith('cryptography')))"
)


def _fresh_token(audience: str) -> tuple[str, list[str]]:
    """A fresh token from an msi process, and the `cryptography` modules that process imported."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, audience], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    body, _, modules = proc.stdout.rpartition("\n[")
    return json.loads(body)["access_token"], [m.strip(" '") for m in modules.rstrip("]\n").split(",") if m.strip()]


def test_a_fresh_token_does_not_import_cryptography_and_verifies(msi_proc, isolated_state):
    for args in (("create-identity", "id1"), ("create-resource", "vm1", "--type", "vm", "--system-assigned", "--user-assigned", "id1"),
                 ("token", "vm1", "--audience", "https://vault.azure.net", "-o", "none")):  # the tenant's signing key is made
        assert msi_proc(*args).returncode == 0
    token, modules = _fresh_token("https://storage.azure.com")
    assert modules == []
    checked = msi_proc("verify", token, "--audience", "https://storage.azure.com", "-o", "json")
    assert checked.returncode == 0, checked.stderr
    # the probe sees `cryptography` when it is used: a signing key in another valid encoding
    keys = isolated_state.parent / "state.toml.d" / "keys"
    signing = [p for p in keys.iterdir() if len(p.stem) == 27]  # the tenant's keys (current, next)
    assert signing
    for path in signing:
        lib = _loaded(path.read_bytes())
        path.write_bytes(lib.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()) + _split(path.read_bytes())[1])
    token, modules = _fresh_token("https://management.azure.com/")
    assert "cryptography.hazmat.primitives.serialization" in modules
    assert msi_proc("verify", token, "-o", "none").returncode == 0


_COMMAND_PROBE = (
    "import sys, json; from msi_cli.cli import main; sys.argv = ['msi', *json.loads(sys.argv[1])]\n"
    "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
    "print(sorted(m for m in sys.modules if m.startswith('cryptography')))"
)


@pytest.mark.parametrize("args", [["jwks"], ["check-access", "vm1", "--role", "Reader", "--scope", "vm1"]])
def test_jwks_and_access_checks_import_no_cryptography(msi_proc, args):
    for setup in (("create-resource", "vm1", "--type", "vm", "--system-assigned"), ("grant", "vm1", "--role", "Reader", "--scope", "vm1"),
                  ("jwks",)):  # the tenant's signing keys are made (with cryptography) before the probe
        assert msi_proc(*setup).returncode == 0
    proc = subprocess.run([sys.executable, "-c", _COMMAND_PROBE, json.dumps(args)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().splitlines()[-1] == "[]"
    if args == ["jwks"]:
        keys = json.loads(proc.stdout.rsplit("\n[", 1)[0])["keys"]
        assert keys and all(k["kty"] == "RSA" and k["e"] == "AQAB" for k in keys)
