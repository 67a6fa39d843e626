"""Tokens from `msi token`, checked the way a resource server would: with PyJWT and the JWKS that
`msi jwks` publishes, and nothing from msi_cli on the verifying side."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import datetime, UTC

import jwt
import pytest
from cryptography import x509

from conftest import fails

VAULT = "https://vault.azure.net"
ARM = "https://management.azure.com/"
IMDS_FIELDS = [
    "access_token", "expires_in", "expires_on", "ext_expires_in", "not_before",
    "resource", "token_type", "client_id",
]
NO_USER_ASSIGNED = "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."
UNABLE = "Unable to load the proper Managed Identity."
SYSTEM_CLAIMS = {
    "aud", "iss", "iat", "nbf", "exp", "aio", "appid", "appidacr", "idp", "idtyp", "oid", "rh", "sub",
    "tid", "uti", "ver", "xms_mirid",
}
USER_CLAIMS = SYSTEM_CLAIMS | {"xms_az_rid"}
MULTIPLE = "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"


# ---- helpers: only PyJWT, cryptography and the standard library ----------------------------------


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pyjwt_verify(token: str, jwks: dict, audience: str | None = None, issuer: str | None = None, check_time: bool = True) -> dict:
    """Verify `token` against a JWKS document the way any resource server would."""
    kid = jwt.get_unverified_header(token)["kid"]
    matches = [k for k in jwks["keys"] if k["kid"] == kid]
    if not matches:
        raise LookupError(f"kid {kid} is not in the JWKS")
    key = jwt.PyJWK(matches[0], algorithm="RS256")
    options = {"require": ["exp", "iat", "nbf"], "verify_aud": audience is not None}
    if not check_time:
        options.update(verify_exp=False, verify_nbf=False, verify_iat=False)
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=issuer, options=options)


def token_response(cli, resource: str, audience: str = VAULT, *selector: str) -> dict:
    return cli.json("token", resource, "--audience", audience, *selector)


def jwks_of(cli, tenant: str | None = None) -> dict:
    return cli.json("jwks", *(["--tenant", tenant] if tenant else []))


def default_tenant(cli) -> str:
    tenants = cli.json("list", "tenants")
    assert len(tenants) == 1
    return tenants[0]["tenantId"]


def simulated_now(cli) -> int:
    now = cli.json("clock", "show")["now"]
    return int(datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def fail(cli, *args: str, code: int = 1) -> str:
    """Run a command that must fail; returns its single `error:` line."""
    return fails(cli(*args), code)


def tamper_payload(token: str, **changes) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims.update(changes)
    return ".".join([header, b64url(json.dumps(claims, separators=(",", ":")).encode()), signature])


def tamper_header(token: str, **changes) -> str:
    header, payload, signature = token.split(".")
    fields = json.loads(b64url_decode(header))
    fields.update(changes)
    return ".".join([b64url(json.dumps(fields, separators=(",", ":")).encode()), payload, signature])


def flip_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    mid = len(signature) // 2
    swapped = "A" if signature[mid] != "A" else "B"
    return ".".join([header, payload, signature[:mid] + swapped + signature[mid + 1:]])


@pytest.fixture
def world(cli) -> dict:
    """vm1: system-assigned and one user-assigned identity; app1: two user-assigned; web1: one
    user-assigned; store1: no identity."""
    id1 = cli.json("create-identity", "id1", "-g", "rg1")
    id2 = cli.json("create-identity", "id2", "-g", "rg1")
    vm1 = cli.json("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--system-assigned", "--user-assigned", "id1")
    app1 = cli.json("create-resource", "app1", "--type", "webapp", "-g", "rg1", "--user-assigned", "id1", "--user-assigned", "id2")
    web1 = cli.json("create-resource", "web1", "--type", "functionapp", "-g", "rg1", "--user-assigned", "id2")
    cli.ok("create-resource", "vm2", "--type", "vm", "-g", "rg1")
    return {"id1": id1, "id2": id2, "vm1": vm1, "app1": app1, "web1": web1, "tid": default_tenant(cli)}


# ---- the JWKS ------------------------------------------------------------------------------------


def test_jwks_is_public_and_its_kid_is_the_certificate_thumbprint(cli):
    doc = jwks_of(cli)
    assert list(doc) == ["keys"] and len(doc["keys"]) >= 1
    for key in doc["keys"]:
        assert set(key) == {"kty", "use", "kid", "x5t", "n", "e", "x5c"}, "a JWK with private or unexpected members"
        assert key["kty"] == "RSA" and key["use"] == "sig"
        der = base64.b64decode(key["x5c"][0])
        assert key["kid"] == key["x5t"] == b64url(hashlib.sha1(der).digest())
        numbers = x509.load_der_x509_certificate(der).public_key().public_numbers()
        assert int.from_bytes(b64url_decode(key["n"]), "big") == numbers.n
        assert int.from_bytes(b64url_decode(key["e"]), "big") == numbers.e == 65537
        assert numbers.n.bit_length() >= 2048
    # Asking again gives the same keys: no roll without simulated time passing.
    assert jwks_of(cli) == doc


# ---- shape of the token and the response ---------------------------------------------------------


def test_system_assigned_token_claims_and_header(cli, world):
    tid = world["tid"]
    before = int(time.time())
    resp = token_response(cli, "vm1", VAULT)
    after = int(time.time())
    token = resp["access_token"]
    jwks = jwks_of(cli)

    claims = pyjwt_verify(token, jwks, audience=VAULT, issuer=f"https://sts.windows.net/{tid}/")
    assert set(claims) == SYSTEM_CLAIMS
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": header["kid"], "x5t": header["kid"]}
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}

    principal = world["vm1"]["identity"]["principalId"]
    sp = cli.json("show", principal)
    assert claims["aud"] == VAULT
    assert claims["iss"] == claims["idp"] == f"https://sts.windows.net/{tid}/"
    assert claims["tid"] == tid
    assert claims["oid"] == claims["sub"] == principal
    assert claims["appid"] == sp["appId"] == resp["client_id"]
    assert claims["appidacr"] == "2" and claims["idtyp"] == "app" and claims["ver"] == "1.0"
    for name in ("aio", "rh", "uti"):
        assert isinstance(claims[name], str) and len(claims[name]) >= 16, name
    for name in ("iat", "nbf", "exp"):
        assert type(claims[name]) is int, name
    assert claims["nbf"] == claims["iat"]
    assert before - 300 <= claims["iat"] <= after - 300, "iat/nbf sit five minutes before issue"
    assert claims["exp"] - claims["iat"] == 24 * 3600 + 300
    host = world["vm1"]["id"]
    assert "/resourceGroups/" in host
    assert claims["xms_mirid"] == host.replace("/resourceGroups/", "/resourcegroups/")
    assert "xms_az_rid" not in claims


def test_app_service_without_selector_uses_only_the_system_assigned_identity(cli, world):
    # App Service: "if all ID parameters are omitted, the system-assigned identity is used"; web1
    # (a function app) holds one user-assigned identity and no system-assigned one.
    message = fail(cli, "token", "web1", "--audience", ARM)
    assert f"HTTP 400: {UNABLE}" in message and "system-assigned" in message


def test_user_assigned_token_names_identity_and_host(cli, world):
    tid = world["tid"]
    resp = token_response(cli, "web1", ARM, "--client-id", world["id2"]["clientId"])
    claims = pyjwt_verify(resp["access_token"], jwks_of(cli), audience=ARM, issuer=f"https://sts.windows.net/{tid}/")
    assert set(claims) == USER_CLAIMS
    id2 = world["id2"]
    assert claims["aud"] == ARM, "aud is the resource exactly as requested"
    assert claims["oid"] == claims["sub"] == id2["principalId"]
    assert claims["appid"] == id2["clientId"] == resp["client_id"]
    assert claims["xms_mirid"] == id2["id"].replace("/resourceGroups/", "/resourcegroups/")
    assert claims["xms_mirid"].endswith("/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2")
    assert claims["xms_az_rid"] == world["web1"]["id"].replace("/resourceGroups/", "/resourcegroups/")
    assert claims["exp"] - claims["iat"] == 86700 and claims["nbf"] == claims["iat"]


def test_imds_response_shape_every_value_a_string(cli, world):
    resp = token_response(cli, "vm1", VAULT)
    assert list(resp) == IMDS_FIELDS
    assert all(type(v) is str for v in resp.values()), resp
    claims = jwt.decode(resp["access_token"], options={"verify_signature": False})
    assert "refresh_token" not in resp  # managed identity tokens come without one
    assert resp["token_type"] == "Bearer"
    assert resp["resource"] == VAULT
    assert resp["client_id"] == claims["appid"]
    assert resp["expires_in"] == resp["ext_expires_in"] == "86400"
    assert resp["expires_on"] == str(claims["exp"])
    assert resp["not_before"] == str(claims["nbf"])


def test_tsv_prints_the_bare_token(cli, world):
    result = cli.ok("token", "vm1", "--audience", "https://storage.azure.com", "-o", "tsv")
    token = result.stdout
    assert token.endswith("\n") and token.count("\n") == 1
    token = token.strip()
    assert token.count(".") == 2 and "\t" not in token
    claims = pyjwt_verify(token, jwks_of(cli), audience="https://storage.azure.com")
    assert claims["oid"] == world["vm1"]["identity"]["principalId"]


def test_each_token_is_unique(cli, world):
    a = jwt.decode(token_response(cli, "vm1", VAULT)["access_token"], options={"verify_signature": False})
    b = jwt.decode(token_response(cli, "vm1", ARM)["access_token"], options={"verify_signature": False})
    assert a["uti"] != b["uti"] and a["aio"] != b["aio"] and a["rh"] != b["rh"]


@pytest.mark.parametrize(
    "audience",
    ["https://management.azure.com", "https://graph.microsoft.com/", "https://kv-prod1.vault.azure.net",
     "https://acct1.blob.core.windows.net/", "api://AzureADTokenExchange"],
)
def test_known_audiences_are_issued_as_requested(cli, audience):
    cli.ok("create-resource", "vm9", "--type", "vm", "--system-assigned")
    resp = token_response(cli, "vm9", audience)
    assert resp["resource"] == audience
    assert pyjwt_verify(resp["access_token"], jwks_of(cli), audience=audience)["aud"] == audience


# ---- selection rules ---------------------------------------------------------------------------


def oid_of(resp: dict) -> str:
    return jwt.decode(resp["access_token"], options={"verify_signature": False})["oid"]


def test_no_selector_prefers_system_assigned(cli, world):
    assert oid_of(token_response(cli, "vm1")) == world["vm1"]["identity"]["principalId"]


def test_no_selector_takes_the_only_user_assigned(cli, world):
    cli.ok("create-resource", "vm3", "--type", "vm", "-g", "rg1", "--user-assigned", "id2")  # an IMDS host
    assert oid_of(token_response(cli, "vm3")) == world["id2"]["principalId"]


def test_no_selector_with_several_user_assigned_is_an_error(cli, world):
    cli.ok("create-resource", "vm4", "--type", "vm", "-g", "rg1", "--user-assigned", "id1", "--user-assigned", "id2")
    line = fail(cli, "token", "vm4", "--audience", VAULT)
    assert MULTIPLE in line
    # App Service asks for the system-assigned identity when none is selected: app1 has none
    assert UNABLE in fail(cli, "token", "app1", "--audience", VAULT)


def test_no_identity_is_identity_not_found(cli, world):
    assert "Identity not found" in fail(cli, "token", "vm2", "--audience", VAULT)


@pytest.mark.parametrize("how", ["--client-id", "--object-id", "--msi-res-id"])
def test_selectors_pick_the_user_assigned_identity(cli, world, how):
    for name in ("id1", "id2"):
        ident = world[name]
        value = {"--client-id": ident["clientId"], "--object-id": ident["principalId"], "--msi-res-id": ident["id"]}[how]
        resp = token_response(cli, "app1", VAULT, how, value)
        assert oid_of(resp) == ident["principalId"]
        assert resp["client_id"] == ident["clientId"]
        # Selectors are case-insensitive, as GUIDs and resource ids are in Azure.
        assert oid_of(token_response(cli, "app1", ARM, how, value.upper())) == ident["principalId"]


def test_selector_picks_user_assigned_over_system_assigned(cli, world):
    resp = token_response(cli, "vm1", VAULT, "--client-id", world["id1"]["clientId"])
    assert oid_of(resp) == world["id1"]["principalId"]
    resp = token_response(cli, "vm1", ARM, "--object-id", world["vm1"]["identity"]["principalId"])
    assert oid_of(resp) == world["vm1"]["identity"]["principalId"]


@pytest.mark.parametrize("how", ["--client-id", "--object-id", "--msi-res-id"])
def test_selector_without_match_is_identity_not_found(cli, world, how):
    # id2 exists, but vm1 does not hold it.
    ident = world["id2"]
    value = {"--client-id": ident["clientId"], "--object-id": ident["principalId"], "--msi-res-id": ident["id"]}[how]
    assert "Identity not found" in fail(cli, "token", "vm1", "--audience", VAULT, how, value)
    unknown = "00000000-0000-0000-0000-000000000001" if how != "--msi-res-id" else ident["id"].replace("/id2", "/nope")
    # an App Service host words it its own way
    assert f"HTTP 400: {NO_USER_ASSIGNED}" in fail(cli, "token", "app1", "--audience", VAULT, how, unknown)
    assert "Identity not found" in fail(cli, "token", "vm2", "--audience", VAULT, how, value)


def test_two_selectors_are_refused(cli, world):
    result = cli("token", "app1", "--audience", VAULT, "--client-id", world["id1"]["clientId"], "--object-id", world["id1"]["principalId"])
    assert result.exit_code != 0 and result.stderr.startswith("error: ")


def test_unknown_audience_is_aadsts500011(cli, world):
    line = fail(cli, "token", "vm1", "--audience", "https://nothing.example.com")
    assert "AADSTS500011" in line and "https://nothing.example.com" in line


def test_unknown_resource_is_not_found(cli, world):
    fail(cli, "token", "nope", "--audience", VAULT, code=3)


def test_detached_identity_no_longer_gets_tokens(cli, world):
    selector = ("--client-id", world["id2"]["clientId"])
    token_response(cli, "web1", VAULT, *selector)
    cli.ok("unassign", "web1", "--user-assigned", "id2")
    assert NO_USER_ASSIGNED in fail(cli, "token", "web1", "--audience", VAULT, *selector)


def test_re_enabled_system_identity_gets_a_new_principal(cli, world):
    old = oid_of(token_response(cli, "vm1", VAULT))
    cli.ok("unassign", "vm1", "--system-assigned")
    cli.ok("assign", "vm1", "--system-assigned")
    new = oid_of(token_response(cli, "vm1", VAULT))
    assert new != old and new == cli.json("show", "vm1")["identity"]["principalId"]


# ---- the platform cache and expiry -----------------------------------------------------------------


def test_cache_returns_same_token_with_less_time_left(cli, world):
    first = token_response(cli, "vm1", VAULT)
    assert first["expires_in"] == "86400"
    again = token_response(cli, "vm1", VAULT)
    assert again["access_token"] == first["access_token"]
    assert 86400 - 30 <= int(again["expires_in"]) <= 86400
    cli.ok("clock", "advance", "10m")
    later = token_response(cli, "vm1", VAULT)
    assert later["access_token"] == first["access_token"]
    assert 86400 - 600 - 30 <= int(later["expires_in"]) <= 86400 - 600
    assert later["ext_expires_in"] == "86400"  # as issued: it does not count down with expires_in
    assert later["expires_on"] == first["expires_on"] and later["not_before"] == first["not_before"]
    assert all(type(v) is str for v in later.values())
    # Another audience or another identity is another cache entry.
    other = token_response(cli, "vm1", ARM)
    assert other["access_token"] != first["access_token"] and other["expires_in"] == "86400"
    user = token_response(cli, "vm1", VAULT, "--client-id", world["id1"]["clientId"])
    assert user["access_token"] != first["access_token"]
    # The tsv form of a cache hit is the same token.
    assert cli.ok("token", "vm1", "--audience", VAULT, "-o", "tsv").stdout.strip() == first["access_token"]


def test_new_token_after_expiry(cli, world):
    first = token_response(cli, "vm1", VAULT)
    cli.ok("clock", "advance", "23h")
    assert token_response(cli, "vm1", VAULT)["access_token"] == first["access_token"]
    cli.ok("clock", "advance", "1h")
    fresh = token_response(cli, "vm1", VAULT)
    assert fresh["access_token"] != first["access_token"]
    assert fresh["expires_in"] == "86400"
    assert int(fresh["expires_on"]) >= int(first["expires_on"]) + 3600
    claims = pyjwt_verify(fresh["access_token"], jwks_of(cli), audience=VAULT, check_time=False)
    now = simulated_now(cli)
    assert claims["iat"] <= now - 300 + 5 and claims["exp"] > now


def test_token_expires_after_24_hours_of_simulated_time(cli, world):
    token = cli.ok("token", "vm1", "--audience", VAULT, "-o", "tsv").stdout.strip()
    assert cli("verify", token).exit_code == 0
    cli.ok("clock", "advance", "23h59m")
    assert cli("verify", token).exit_code == 0
    cli.ok("clock", "advance", "1m")
    result = cli("verify", token, "-o", "json")
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["valid"] is False and verdict["reason"].startswith("expired")
    assert result.stderr.startswith("error: invalid token: expired")
    # Its signature is still good: only time made it invalid.
    claims = pyjwt_verify(token, jwks_of(cli), audience=VAULT, check_time=False)
    assert claims["exp"] <= simulated_now(cli)


# ---- msi verify -------------------------------------------------------------------------------------


def verdict(cli, token: str, *extra: str) -> tuple[int, dict, str]:
    result = cli("verify", token, "-o", "json", *extra)
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_verify_valid_token(cli, world):
    token = token_response(cli, "vm1", VAULT)["access_token"]
    code, out, err = verdict(cli, token)
    assert code == 0 and err == ""
    assert out["valid"] is True and out["reason"] == "" and out["principalExists"] is True
    assert out["claims"] == jwt.decode(token, options={"verify_signature": False})
    assert out["header"] == jwt.get_unverified_header(token)
    code, out, _ = verdict(cli, token, "--audience", VAULT)
    assert code == 0 and out["valid"] is True
    # `-` reads the token from stdin.
    assert cli("verify", "-", input=token + "\n").exit_code == 0


def test_verify_wrong_audience(cli, world):
    token = token_response(cli, "vm1", VAULT)["access_token"]
    code, out, err = verdict(cli, token, "--audience", ARM)
    assert code == 1 and out["valid"] is False and out["reason"].startswith("wrong audience")
    assert err.startswith("error: invalid token: wrong audience")


def test_verify_rejects_tampered_payload(cli, world):
    token = token_response(cli, "vm1", VAULT)["access_token"]
    for changes in ({"aud": ARM}, {"exp": 4102444800}, {"oid": world["id1"]["principalId"]}):
        forged = tamper_payload(token, **changes)
        code, out, err = verdict(cli, forged)
        assert code == 1 and out["valid"] is False and out["reason"] == "bad signature", changes
        assert err.startswith("error: invalid token: bad signature")
        with pytest.raises(jwt.InvalidSignatureError):
            pyjwt_verify(forged, jwks_of(cli))


def test_verify_rejects_tampered_signature(cli, world):
    token = token_response(cli, "vm1", VAULT)["access_token"]
    forged = flip_signature(token)
    assert forged != token
    code, out, _ = verdict(cli, forged)
    assert code == 1 and out["reason"] == "bad signature"
    with pytest.raises(jwt.InvalidSignatureError):
        pyjwt_verify(forged, jwks_of(cli))


def test_verify_rejects_unknown_key(cli, world):
    token = token_response(cli, "vm1", VAULT)["access_token"]
    forged = tamper_header(token, kid="bm90LWEta2V5LWF0LWFsbC0tLS0", x5t="bm90LWEta2V5LWF0LWFsbC0tLS0")
    code, out, err = verdict(cli, forged)
    assert code == 1 and out["reason"].startswith("unknown key")
    assert err.startswith("error: invalid token: unknown key")
    with pytest.raises(LookupError):
        pyjwt_verify(forged, jwks_of(cli))


def test_verify_rejects_garbage_and_foreign_issuer(cli, world):
    result = cli("verify", "not-a-token")  # the reason once: the error line, no verdict table besides
    assert result.exit_code == 1 and result.stdout == "" and result.stderr.startswith("error: invalid token: malformed")
    result = cli("verify", "not-a-token", "-o", "none")
    assert result.exit_code == 1 and result.stderr.startswith("error: invalid token")
    token = token_response(cli, "vm1", VAULT)["access_token"]
    code, out, _ = verdict(cli, tamper_payload(token, tid="11111111-1111-1111-1111-111111111111"))
    assert code == 1 and out["valid"] is False
    # alg "none" with the signature stripped is not accepted.
    unsigned = tamper_header(token, alg="none").rsplit(".", 1)[0] + "."
    code, out, _ = verdict(cli, unsigned)
    assert code == 1 and out["valid"] is False


def test_token_of_deleted_principal_still_verifies(cli, world):
    token = token_response(cli, "vm1", VAULT)["access_token"]
    cli.ok("unassign", "vm1", "--system-assigned")
    code, out, _ = verdict(cli, token)
    assert code == 0 and out["valid"] is True and out["principalExists"] is False
    user_token = token_response(cli, "web1", VAULT, "--client-id", world["id2"]["clientId"])["access_token"]
    cli.ok("delete", "id2", "--yes")
    code, out, _ = verdict(cli, user_token)
    assert code == 0 and out["principalExists"] is False
    pyjwt_verify(user_token, jwks_of(cli), audience=VAULT)


# ---- tenants and their keys --------------------------------------------------------------------------


def test_second_tenant_signs_with_its_own_keys(cli):
    tenant_b = cli.json("create-tenant", "Contoso")["tenantId"]
    cli.ok("create-subscription", "sub-b", "--tenant", "Contoso")
    cli.ok("create-resource", "vma", "--type", "vm", "--system-assigned")
    cli.ok("create-resource", "vmb", "--type", "vm", "--subscription", "sub-b", "--system-assigned")
    tenant_a = next(t["tenantId"] for t in cli.json("list", "tenants") if t["displayName"] == "Default Directory")

    token_a = token_response(cli, "vma", VAULT)["access_token"]
    token_b = token_response(cli, "vmb", VAULT)["access_token"]
    jwks_a, jwks_b = jwks_of(cli), jwks_of(cli, "Contoso")
    assert jwks_of(cli, tenant_b) == jwks_b
    assert {k["kid"] for k in jwks_a["keys"]}.isdisjoint({k["kid"] for k in jwks_b["keys"]})
    assert {k["n"] for k in jwks_a["keys"]}.isdisjoint({k["n"] for k in jwks_b["keys"]})

    claims_b = pyjwt_verify(token_b, jwks_b, audience=VAULT, issuer=f"https://sts.windows.net/{tenant_b}/")
    assert claims_b["tid"] == tenant_b and claims_b["idp"] == claims_b["iss"]
    pyjwt_verify(token_a, jwks_a, audience=VAULT, issuer=f"https://sts.windows.net/{tenant_a}/")
    # Tenant B's token does not verify with tenant A's JWKS: its kid is not there, and no key of A
    # validates its signature.
    with pytest.raises(LookupError):
        pyjwt_verify(token_b, jwks_a)
    for jwk in jwks_a["keys"]:
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token_b, jwt.PyJWK(jwk, algorithm="RS256"), algorithms=["RS256"], options={"verify_aud": False})
    # `msi verify` names the issuing tenant.
    code, out, _ = verdict(cli, token_b)
    assert code == 0 and out["issuer"] == "Contoso"
    # Claiming tenant A's issuer with tenant B's signature is refused.
    forged = tamper_payload(token_b, tid=tenant_a, iss=f"https://sts.windows.net/{tenant_a}/")
    code, out, _ = verdict(cli, forged)
    assert code == 1 and out["valid"] is False


def test_signing_keys_roll_with_overlap(cli, world):
    kid1 = jwt.get_unverified_header(token_response(cli, "vm1", "https://storage.azure.com/")["access_token"])["kid"]
    first = [k["kid"] for k in jwks_of(cli)["keys"]]
    assert first[0] == kid1 and len(first) == 2  # "there's always more than one valid key"
    nxt = first[1]
    # Just before the roll (the key signs for 42 days) a token is still signed by the first key.
    cli.ok("clock", "advance", "41d23h")
    old = token_response(cli, "vm1", VAULT)["access_token"]
    assert jwt.get_unverified_header(old)["kid"] == kid1
    cli.ok("clock", "advance", "2h")
    new = token_response(cli, "vm1", ARM)["access_token"]
    kid2 = jwt.get_unverified_header(new)["kid"]
    assert kid2 == nxt  # the key clients already had in their cached JWKS
    published = [k["kid"] for k in jwks_of(cli)["keys"]]
    assert published[:2] == [kid1, kid2] and len(published) == 3  # and the next one after it
    # The token signed before the roll still verifies, with PyJWT and with msi verify.
    jwks = jwks_of(cli)
    pyjwt_verify(old, jwks, audience=VAULT, check_time=False)
    pyjwt_verify(new, jwks, audience=ARM, check_time=False)
    assert cli("verify", old).exit_code == 0
    # The old key stays published 14 days after it stopped signing, then is gone.
    cli.ok("clock", "advance", "13d")
    assert {kid1, kid2} <= {k["kid"] for k in jwks_of(cli)["keys"]}
    cli.ok("clock", "advance", "2d")
    jwks = jwks_of(cli)
    assert kid1 not in {k["kid"] for k in jwks["keys"]} and kid2 in {k["kid"] for k in jwks["keys"]}
    assert len(jwks["keys"]) == 2
    with pytest.raises(LookupError):
        pyjwt_verify(old, jwks, check_time=False)
    code, out, _ = verdict(cli, old)
    assert code == 1 and out["reason"].startswith("unknown key")


def test_signing_key_rolls_after_43_days_and_is_gone_after_57(cli, world):
    token = token_response(cli, "vm1", VAULT)["access_token"]
    kid1 = jwt.get_unverified_header(token)["kid"]
    cli.ok("clock", "advance", "43d")
    fresh = token_response(cli, "vm1", VAULT)["access_token"]  # the old one expired: a new token
    kid2 = jwt.get_unverified_header(fresh)["kid"]
    assert kid2 != kid1
    jwks = jwks_of(cli)
    assert {kid1, kid2} <= {k["kid"] for k in jwks["keys"]}
    assert pyjwt_verify(token, jwks, check_time=False)["aud"] == VAULT
    cli.ok("clock", "advance", "14d")  # day 57
    jwks = jwks_of(cli)
    assert kid1 not in {k["kid"] for k in jwks["keys"]}
    assert kid2 in {k["kid"] for k in jwks["keys"]}


@pytest.mark.parametrize("back", ["1d", "10d", "100d", "400d"])
def test_after_the_clock_goes_back_the_jwks_still_holds_the_next_key(cli, world, back):
    """Before the tenant's keys were made, a key is made to sign; the one that takes over from it
    is published beside it, even when the keys from later on the timeline are not yet."""
    token_response(cli, "vm1")
    cli.ok("clock", "advance", "--", f"-{back}")
    signing = jwt.get_unverified_header(token_response(cli, "vm1", VAULT)["access_token"])["kid"]
    published = [k["kid"] for k in jwks_of(cli)["keys"]]
    assert signing in published and len(published) >= 2, published


def test_next_signing_key_is_always_published_before_it_signs(cli, world):
    # Azure: "there's always more than one valid key" in the JWKS: the next one is published
    # while the current one signs, so clients that cached the JWKS already know it.
    first_kid = jwt.get_unverified_header(token_response(cli, "vm1")["access_token"])["kid"]
    published = [k["kid"] for k in jwks_of(cli)["keys"]]
    assert published[0] == first_kid and len(published) == 2
    successor = published[1]
    cli.ok("clock", "advance", "36d")  # six days before the key retires at 42 days
    assert [k["kid"] for k in jwks_of(cli)["keys"]] == [first_kid, successor]
    fresh = token_response(cli, "vm1", "https://storage.azure.com/")["access_token"]
    assert jwt.get_unverified_header(fresh)["kid"] == first_kid  # published, not signing yet
    cli.ok("clock", "advance", "7d")
    later = token_response(cli, "vm1", "https://graph.microsoft.com/")["access_token"]
    assert jwt.get_unverified_header(later)["kid"] == successor
    pyjwt_verify(later, jwks_of(cli), audience="https://graph.microsoft.com/", check_time=False)


def test_a_v2_scope_is_not_a_resource_for_the_hosts(cli):
    """IMDS and App Service take a resource URI; '/.default' makes it a v2 scope, whose resource
    principal the tenant does not have: AADSTS500011 from IMDS, App Service's 500 (clients pass
    the resource: azure-identity takes '/.default' off the scope before asking)."""
    cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned")
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned")
    vm = cli("token", "vm1", "--audience", "https://vault.azure.net/.default")
    assert vm.exit_code == 1 and "AADSTS500011" in vm.stderr and "https://vault.azure.net/.default" in vm.stderr
    web = cli("token", "web1", "--audience", "https://vault.azure.net/.default")
    assert web.exit_code == 1 and "HTTP 500" in web.stderr


def test_a_resource_without_a_token_endpoint_gets_no_token(cli, isolated_state):
    """A storage account's or Key Vault's identity is the service's own: no code on it asks a host
    for a token (msi env says the same)."""
    cli.ok("create-resource", "st5", "--type", "storage", "-g", "rg1", "--system-assigned")
    before = isolated_state.read_bytes()
    refused = cli("token", "st5", "--audience", "https://vault.azure.net")
    assert refused.exit_code == 1 and "'st5' is a storage account, which has no managed identity token endpoint" in refused.stderr
    assert isolated_state.read_bytes() == before


def test_a_user_assigned_identity_named_as_a_host_is_a_wrong_use_everywhere(cli):
    """token and check-access answer as msi env does: the identity exists (not 'not found', exit 3),
    but it is not a resource with a token endpoint (exit 2)."""
    cli.ok("create-identity", "uid1")
    for args in (("token", "uid1", "--audience", "https://vault.azure.net"),
                 ("check-access", "uid1", "--scope", "uid1", "--role", "Reader")):
        refused = cli(*args)
        assert refused.exit_code == 2 and "'uid1' is a user-assigned identity, not a resource" in refused.stderr, refused.stderr
    assert cli("token", "nothing-here", "--audience", "https://vault.azure.net").exit_code == 3
