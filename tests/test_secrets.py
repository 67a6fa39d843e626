"""No private key, certificate private part or cached token leaks: run a broad set of commands,
collect every output, error and the activity log, and grep them for the secrets on disk."""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key


VAULT = "https://vault.azure.net"
ARM = "https://management.azure.com"
PRIVATE_BLOCK = re.compile(r"-----BEGIN ([A-Z ]*PRIVATE KEY)-----(.*?)-----END \1-----", re.S)


class Recorder:
    """Runs commands through the `cli` fixture and keeps every stdout and stderr, and every token
    the platform cache held after each command."""

    def __init__(self, cli, state: Path) -> None:
        self.cli = cli
        self.private = state.parent / (state.name + ".d")
        self.runs: list[tuple[tuple[str, ...], str, str]] = []
        self.cached: set[str] = set()

    def __call__(self, *args: str, input: str | None = None, ok: bool | None = True):
        result = self.cli(*args, input=input)
        if ok is True:
            assert result.exit_code == 0, f"msi {' '.join(args)} -> {result.exit_code}: {result.stderr}"
        elif ok is False:
            assert result.exit_code != 0, f"msi {' '.join(args)} should have failed"
            assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr, result.stderr
        self.runs.append((args, result.stdout, result.stderr))
        tokens = self.private / "tokens.json"
        if tokens.exists():
            for entry in json.loads(tokens.read_text()).values():
                self.cached.add(entry["access_token"])
        return result

    def json(self, *args: str):
        return json.loads(self(*args, "-o", "json").stdout)


def _encodings(value: int) -> list[str]:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return [
        base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),  # as a JWK member would carry it
        base64.b64encode(raw).decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        str(value),
    ]


def private_secrets(keys: Path) -> list[str]:
    """What must never be printed, from every PEM file in the key store: each base64 line of a
    PRIVATE KEY block (except lines that only encode bytes of the public certificate, such as the
    RSA modulus, which a JWKS rightly prints), each block's body joined, and the private numbers
    themselves in the encodings a leak would use."""
    found: list[str] = []
    for path in sorted(keys.glob("*.pem")):
        text = path.read_text()
        blocks = PRIVATE_BLOCK.findall(text)
        assert blocks, f"{path.name} holds no private key"
        public = x509.load_pem_x509_certificate(text.encode()).public_bytes(serialization.Encoding.DER)
        for _, body in blocks:
            lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
            for line in lines:
                if len(line) >= 16 and base64.b64decode(line + "=" * (-len(line) % 4)) not in public:
                    found.append(line)
            found.append("".join(lines))
        key = load_pem_private_key(text.encode(), password=None)
        numbers = key.private_numbers()
        if isinstance(key, rsa.RSAPrivateKey):
            values = [numbers.d, numbers.p, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp]
        else:
            values = [numbers.private_value]
        for value in values:
            found.extend(_encodings(value))
    return found


def exercise(run: Recorder) -> dict:
    """A broad tour of the CLI: every kind of object, list, token path, verify verdict and error."""
    run("create-tenant", "Contoso")
    run("create-subscription", "sub-b", "--tenant", "Contoso")
    id1 = run.json("create-identity", "id1", "-g", "rg1")
    run("create-identity", "id2", "-g", "rg1")
    vm1 = run.json("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--system-assigned", "--user-assigned", "id1")
    run("create-resource", "app1", "--type", "webapp", "--user-assigned", "id1", "--user-assigned", "id2")
    run("create-resource", "vmb", "--type", "vm", "--subscription", "sub-b", "--system-assigned")
    run("create-resource", "kv1", "--type", "keyvault")
    pid = vm1["identity"]["principalId"]
    for out in ("table", "json", "tsv"):
        for target in ("vm1", "id1", pid, id1["clientId"]):
            run("show", target, "-o", out)
        for kind in ("resources", "identities", "principals", "role-assignments", "tenants", "subscriptions"):
            run("list", kind, "-o", out)
        run("jwks", "-o", out)
        run("jwks", "--tenant", "Contoso", "-o", out)
        run("clock", "show", "-o", out)
    # Tokens: fresh, cache hits, every output format, both tenants, selectors.
    tokens = []
    for out in ("json", "tsv", "table", "none"):
        result = run("token", "vm1", "--audience", VAULT, "-o", out)
        if out == "tsv":
            tokens.append(result.stdout.strip())
    tokens.append(run.json("token", "vm1", "--audience", ARM)["access_token"])
    tokens.append(run.json("token", "app1", "--audience", VAULT, "--client-id", id1["clientId"])["access_token"])
    tokens.append(run.json("token", "vmb", "--audience", VAULT)["access_token"])
    run("token", "vm1", "--audience", VAULT, "--query", "access_token", "-o", "tsv")
    # Verify: valid, wrong audience, tampered, garbage; in every format.
    header, payload, signature = tokens[0].split(".")
    tampered = ".".join([header, payload, signature[:-8] + "AAAAAAAA"])
    for out in ("table", "json", "tsv"):
        run("verify", tokens[0], "-o", out)
        run("verify", tokens[0], "--audience", ARM, "-o", out, ok=False)
        run("verify", tampered, "-o", out, ok=False)
    run("verify", "-", input=tokens[1])
    run("verify", "garbage", ok=False)
    # Errors of every kind.
    run("token", "app1", "--audience", VAULT, ok=False)  # several user-assigned
    run("token", "kv1", "--audience", VAULT, ok=False)  # no identity
    run("token", "vm1", "--audience", "https://unknown.example.com", ok=False)
    run("token", "vm1", "--audience", VAULT, "--client-id", "00000000-0000-0000-0000-000000000000", ok=False)
    run("token", "nope", "--audience", VAULT, ok=False)
    run("show", "nope", ok=False)
    run("create-identity", "id1", "-g", "rg1", ok=False)
    run("clock", "advance", "soon", ok=False)
    run("jwks", "--tenant", "Nowhere", ok=False)
    # Time passes: certificates and signing keys roll, tokens expire and are minted again.
    run("clock", "advance", "45d")
    run("show", pid, "-o", "json")
    run("token", "vm1", "--audience", VAULT, "-o", "json")
    run("verify", tokens[0], ok=False)  # expired
    run("clock", "set", "2020-01-01T00:00:00Z")
    run("token", "vm1", "--audience", ARM)  # moving the clock never strands an identity
    run("clock", "reset")
    run("unassign", "vm1", "--system-assigned")
    run("verify", tokens[1], ok=None)
    run("delete", "app1", "--yes")
    scope = "/subscriptions/" + run.json("list", "subscriptions")[0]["id"]
    run("grant", "id1", "--role", "Reader", "--scope", scope)
    for out in ("table", "json", "tsv"):
        run("check-access", "vm1", "--scope", scope, "--role", "Reader", "--client-id", id1["clientId"], "-o", out, ok=None)
        run("list", "role-assignments", "-o", out)
    run("env", "vm1", "-o", "json", ok=False)  # no `msi serve` is running
    for out in ("table", "json", "tsv"):
        run("log", "-o", out)
    return {"tokens": tokens}


def test_no_secret_in_any_output_error_or_log(cli, isolated_state):
    run = Recorder(cli, isolated_state)
    exercise(run)

    keys = run.private / "keys"
    secrets = private_secrets(keys)
    assert len(list(keys.glob("*.pem"))) >= 6  # two tenants' signing keys and the identities' certificates
    assert secrets and run.cached and len(run.cached) >= 4

    log = (run.private / "activity.jsonl").read_text()
    state_text = isolated_state.read_text()
    assert log.strip()
    places = [(f"msi {' '.join(args)} (stdout)", out) for args, out, _ in run.runs]
    places += [(f"msi {' '.join(args)} (stderr)", err) for args, _, err in run.runs]
    places += [("activity log", log), ("state file", state_text)]

    for secret in secrets:
        for where, text in places:
            assert secret not in text, f"private key material in {where}"
    for where, text in places:
        assert "PRIVATE KEY" not in text, where

    # A cached token appears only on the stdout of `msi token` calls that returned it, and no part
    # of its signature anywhere else.
    for token in run.cached:
        signature = token.rsplit(".", 1)[1]
        for args, out, err in run.runs:
            assert token not in err and signature not in err, f"cached token on stderr of msi {' '.join(args)}"
            if signature in out:
                assert args[0] == "token", f"cached token in the output of msi {' '.join(args)}"
                fmt = args[args.index("-o") + 1] if "-o" in args else "table"
                if fmt == "tsv":
                    assert out.strip() == token
                elif fmt == "json":
                    assert json.loads(out)["access_token"] == token
        assert signature not in log and signature not in state_text


def test_secret_files_are_owner_only(cli, isolated_state):
    run = Recorder(cli, isolated_state)
    run("create-resource", "vm1", "--type", "vm", "--system-assigned")
    run("create-identity", "id1")
    run("token", "vm1", "--audience", VAULT)
    run("jwks")
    private = run.private
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert stat.S_IMODE((private / "keys").stat().st_mode) == 0o700
    pems = list((private / "keys").glob("*.pem"))
    assert len(pems) == 4  # the signing key and the next one (published), two identity certificates
    for path in [*pems, private / "tokens.json", private / "activity.jsonl", isolated_state]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # Nothing but the key store holds private keys.
    for path in private.rglob("*"):
        if path.is_file() and path.parent.name != "keys":
            assert b"PRIVATE KEY" not in path.read_bytes(), path


@pytest.mark.parametrize("args", [["verify", "x.y.z"], ["token", "nope", "--audience", VAULT], ["clock", "advance", "x"]])
def test_errors_from_the_installed_command_carry_no_traceback(msi_proc, args):
    msi_proc("create-resource", "vm1", "--type", "vm", "--system-assigned")
    token = msi_proc("token", "vm1", "--audience", VAULT, "-o", "tsv").stdout.strip()
    result = msi_proc(*args)
    assert result.returncode != 0
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert token not in result.stderr and token.rsplit(".", 1)[1] not in result.stdout + result.stderr
