"""Identity certificates issued by the platform, the simulated clock, and the chain of trust that
tokens depend on."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, UTC
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from conftest import fails

VAULT = "https://vault.azure.net"
DAY = timedelta(days=1)


def when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def keys_dir(state: Path) -> Path:
    return state.parent / (state.name + ".d") / "keys"


def certificates_on_disk(state: Path) -> dict[str, tuple[x509.Certificate, bytes]]:
    """Every certificate in the key store by upper-case hex SHA-1 of its DER, with the PEM file."""
    found = {}
    for path in keys_dir(state).glob("*.pem"):
        pem = path.read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        der = cert.public_bytes(serialization.Encoding.DER)
        found[hashlib.sha1(der).hexdigest().upper()] = (cert, pem)
    return found


def fail(cli, *args: str, code: int = 1) -> str:
    """Run a command that must fail; returns its single `error:` line."""
    return fails(cli(*args), code)


def key_credentials(cli, principal_id: str, *options: str) -> list[dict]:
    return cli.json(*options, "show", principal_id)["keyCredentials"]


# ---- certificates ----------------------------------------------------------------------------------


def test_new_identity_gets_one_certificate(cli, isolated_state):
    ident = cli.json("create-identity", "id1")
    creds = key_credentials(cli, ident["principalId"])
    assert len(creds) == 1
    cred = creds[0]
    assert cred["type"] == "AsymmetricX509Cert" and cred["usage"] == "Verify"
    start, end = when(cred["startDateTime"]), when(cred["endDateTime"])
    assert end - start == 90 * DAY
    assert abs(start - when(cli.json("clock", "show")["now"])) <= timedelta(seconds=5)
    thumb = cred["customKeyIdentifier"]
    assert re.fullmatch(r"[0-9A-F]{40}", thumb)
    # The thumbprint is the SHA-1 of a real certificate, whose private key sits beside it.
    on_disk = certificates_on_disk(isolated_state)
    assert thumb in on_disk
    cert, pem = on_disk[thumb]
    assert cert.not_valid_before_utc == start and cert.not_valid_after_utc == end
    assert ident["clientId"] in cert.subject.rfc4514_string()
    private = load_pem_private_key(pem, password=None)
    assert private.public_key().public_numbers() == cert.public_key().public_numbers()
    # Only public facts are shown.
    shown = cli.ok("show", ident["principalId"], "-o", "json").stdout
    assert "PRIVATE" not in shown and "BEGIN" not in shown
    allowed = {"customKeyIdentifier", "displayName", "endDateTime", "keyId", "startDateTime", "type", "usage"}
    assert set(cred) <= allowed, set(cred) - allowed


def test_system_assigned_identity_gets_a_certificate_too(cli, isolated_state):
    res = cli.json("create-resource", "web1", "--type", "webapp", "--system-assigned")
    creds = key_credentials(cli, res["identity"]["principalId"])
    assert len(creds) == 1 and creds[0]["customKeyIdentifier"] in certificates_on_disk(isolated_state)
    # Each identity has its own certificate.
    other = cli.json("create-identity", "id1")
    assert key_credentials(cli, other["principalId"])[0]["customKeyIdentifier"] != creds[0]["customKeyIdentifier"]


def test_certificate_rolls_after_45_days_and_expires_after_90(cli, isolated_state):
    ident = cli.json("create-identity", "id1")
    cli.ok("create-resource", "vm1", "--type", "vm", "--user-assigned", "id1")
    pid = ident["principalId"]
    (first,) = key_credentials(cli, pid)
    cli.ok("clock", "advance", "44d")
    assert key_credentials(cli, pid) == [first]
    cli.ok("clock", "advance", "1d")
    creds = key_credentials(cli, pid)  # no other action than moving the clock
    assert len(creds) == 2 and creds[0] == first
    second = creds[1]
    assert second["customKeyIdentifier"] != first["customKeyIdentifier"]
    assert when(second["startDateTime"]) - when(first["startDateTime"]) == 45 * DAY
    assert when(second["endDateTime"]) - when(second["startDateTime"]) == 90 * DAY
    assert second["customKeyIdentifier"] in certificates_on_disk(isolated_state)
    assert cli("token", "vm1", "--audience", VAULT).exit_code == 0  # signed in with the new certificate
    cli.ok("clock", "advance", "46d")  # day 91
    creds = key_credentials(cli, pid)
    thumbs = [c["customKeyIdentifier"] for c in creds]
    assert first["customKeyIdentifier"] not in thumbs
    assert second["customKeyIdentifier"] in thumbs
    now = when(cli.json("clock", "show")["now"])
    assert all(when(c["startDateTime"]) <= now < when(c["endDateTime"]) for c in creds)
    assert cli("token", "vm1", "--audience", "https://management.azure.com").exit_code == 0


def test_one_long_jump_of_the_clock_leaves_the_certificates_steps_would(cli, tmp_path):
    """Certificates last 90 days and roll every 45, so two always overlap (azure-behaviour.md):
    200 days in one move leave the same two (issued on days 135 and 180) as 40-day steps do."""
    def starts(state: str, steps: list[str]) -> list[int]:
        cli.ok("--state", state, "--create", "create-resource", "vm1", "--type", "vm", "--system-assigned")
        pid = cli.json("--state", state, "show", "vm1")["identity"]["principalId"]
        created = when(key_credentials(cli, pid, "--state", state)[0]["startDateTime"])
        for step in steps:
            cli.ok("--state", state, "clock", "advance", step)
        return sorted((when(c["startDateTime"]) - created) // DAY for c in key_credentials(cli, pid, "--state", state))

    assert starts(str(tmp_path / "jump" / "s.toml"), ["200d"]) == [135, 180]
    assert starts(str(tmp_path / "steps" / "s.toml"), ["40d"] * 5) == [135, 180]


def test_identity_left_alone_for_a_year_still_gets_tokens(cli):
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    pid = cli.json("show", "vm1")["identity"]["principalId"]
    cli.ok("clock", "advance", "365d")
    creds = key_credentials(cli, pid)
    now = when(cli.json("clock", "show")["now"])
    assert creds and any(when(c["startDateTime"]) <= now < when(c["endDateTime"]) for c in creds)
    assert all(when(c["endDateTime"]) > now for c in creds)
    cli.ok("token", "vm1", "--audience", VAULT)


def test_clock_set_before_creation_keeps_tokens_working(cli):
    # Moving the clock never corrupts the state: the identity gets a certificate valid at the new
    # time (the simulator never answers its own bookkeeping with an Azure error code).
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    cli.ok("token", "vm1", "--audience", VAULT)
    cli.ok("clock", "set", "2020-01-01T00:00:00Z")
    cli.ok("token", "vm1", "--audience", "https://management.azure.com")
    cli.ok("clock", "reset")
    cli.ok("token", "vm1", "--audience", "https://management.azure.com/")


# ---- the clock ---------------------------------------------------------------------------------------


def test_clock_show_advance_set_reset(cli):
    shown = cli.json("clock", "show")
    assert set(shown) >= {"now", "realTime", "offsetSeconds", "offset", "simulated"}
    assert shown["offsetSeconds"] == 0 and shown["simulated"] is False
    assert abs(when(shown["now"]) - datetime.now(UTC)) < timedelta(seconds=10)

    advanced = cli.json("clock", "advance", "1h30m")
    assert advanced["offsetSeconds"] == 5400 and advanced["simulated"] is True
    assert when(advanced["now"]) - when(advanced["realTime"]) == timedelta(minutes=90)
    assert cli.json("clock", "show")["offsetSeconds"] == 5400
    assert cli.json("clock", "advance", "2d")["offsetSeconds"] == 5400 + 2 * 86400
    back = json.loads(cli.ok("clock", "advance", "-o", "json", "--", "-2d").stdout)  # '--' ends the options
    assert back["offsetSeconds"] == 5400

    target = datetime(2030, 6, 1, tzinfo=UTC)
    cli.ok("clock", "set", "2030-06-01T00:00:00Z")
    assert abs(when(cli.json("clock", "show")["now"]) - target) < timedelta(seconds=5)

    reset = cli.json("clock", "reset")
    assert reset["offsetSeconds"] == 0 and reset["simulated"] is False
    assert cli.json("clock", "show")["offsetSeconds"] == 0
    # Table output names the simulated time.
    assert cli.ok("clock", "show").stdout.strip()


@pytest.mark.parametrize("args", [("advance", "soon"), ("advance", "10x"), ("advance", ""), ("set", "yesterday")])
def test_clock_rejects_bad_input(cli, args):
    fail(cli, "clock", *args, code=2)
    assert cli.json("clock", "show")["offsetSeconds"] == 0


def test_every_timestamp_comes_from_the_simulated_clock(cli, isolated_state):
    cli.ok("clock", "set", "2031-03-04T05:06:07Z")
    tenant = cli.json("create-tenant", "Fabrikam")
    assert tenant["createdDateTime"].startswith("2031-03-04T05:")
    ident = cli.json("create-identity", "id1")
    cli.ok("create-resource", "vm1", "--type", "vm", "--user-assigned", "id1")
    cred = key_credentials(cli, ident["principalId"])[0]
    assert cred["startDateTime"].startswith("2031-03-04T05:")
    resp = cli.json("token", "vm1", "--audience", VAULT)
    expected = int(datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp())
    assert 0 <= int(resp["expires_on"]) - 86400 - expected < 60
    log = isolated_state.parent / (isolated_state.name + ".d") / "activity.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    last_set = max(n for n, e in enumerate(entries) if e["operation"] == "Set clock")
    after_set = entries[last_set:]
    assert len(after_set) >= 5  # set clock, tenant, identity, resource, token...
    assert all(e["time"].startswith("2031-03-04T05:") for e in after_set), after_set


# ---- the chain of trust ------------------------------------------------------------------------------


def move_principal_by_hand(state: Path, principal_id: str, tenant_id: str) -> None:
    """Edit the TOML state as a person would: the principal's `tenant` line, nothing else."""
    text = state.read_text()
    head, sep, rest = text.partition(f'[[principals]]\nid = "{principal_id}"\n')
    assert sep, "principal not found in the state file"
    old = re.search(r'^tenant = "([0-9a-f-]+)"$', rest, re.M)
    assert old is not None
    state.write_text(head + sep + rest[: old.start(1)] + tenant_id + rest[old.end(1):])


def test_token_refused_when_signing_tenant_no_longer_holds_the_principal(cli, isolated_state):
    other = cli.json("create-tenant", "Contoso")["tenantId"]
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    pid = cli.json("show", "vm1")["identity"]["principalId"]
    cli.ok("token", "vm1", "--audience", VAULT)
    move_principal_by_hand(isolated_state, pid, other)
    assert cli.json("show", pid)  # the state still loads
    line = fail(cli, "token", "vm1", "--audience", "https://management.azure.com")
    assert "AADSTS700016" in line and other not in line.split("(")[0]
    assert pid in line  # the reason names the principal the signing tenant does not hold


def test_token_refused_after_subscription_moves_tenant(cli):
    cli.ok("create-tenant", "Contoso")
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    cli.ok("create-identity", "id1")
    cli.ok("create-resource", "vm2", "--type", "vm", "--user-assigned", "id1")
    cli.ok("token", "vm1", "--audience", VAULT)
    cli.ok("token", "vm2", "--audience", VAULT)
    sub = cli.json("list", "subscriptions")[0]["id"]
    cli.ok("move-subscription", sub, "--tenant", "Contoso", "--yes")
    # The cached tokens are not handed out: the tenant that would sign now is Contoso, which does
    # not hold either principal.
    for vm in ("vm1", "vm2"):
        line = fail(cli, "token", vm, "--audience", VAULT)
        assert "AADSTS700016" in line


def test_missing_certificate_file_is_an_error_not_a_token(cli, isolated_state):
    ident = cli.json("create-identity", "id1")
    cli.ok("create-resource", "vm1", "--type", "vm", "--user-assigned", "id1")
    thumb = key_credentials(cli, ident["principalId"])[0]["customKeyIdentifier"]
    (keys_dir(isolated_state) / f"{thumb}.pem").unlink()
    result = cli("token", "vm1", "--audience", VAULT)
    assert result.exit_code == 1 and result.stdout == "" and result.stderr.startswith("error: ")
    assert "key" in result.stderr and "Traceback" not in result.stderr
