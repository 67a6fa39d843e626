"""Entra's token exchange for federated credentials, through the pure core function: every rule
and every refusal (status, error, AADSTS code), on the simulated clock."""

from __future__ import annotations

import json
import re

import pytest

from msi_cli.core import directory, exchange, federation, issuers, lifecycle, tokens, verify
from msi_cli.store.statefile import StateFile

BASE = "https://127.0.0.1:8443"
SUBJECT = "repo:octo-org/app:ref:refs/heads/main"
AUD = "api://AzureADTokenExchange"
MGMT = "https://management.azure.com/.default"


class World:
    def __init__(self, path) -> None:
        self.sf = StateFile(path)
        with self.sf.transaction() as ctx:
            self.identity = lifecycle.create_identity(ctx, "ci-id", None, None, None)
            self.issuer = issuers.create(ctx, "gh", "github")
            federation.add(ctx, self.identity, "main", issuers.url(BASE, "gh"), SUBJECT)
            self.tenant = ctx.state.tenants[self.identity.tenant_id]

    def assertion(self, subject: str = SUBJECT, audience: str = AUD, issuer: str = "gh", shift: int = 0, **kw) -> str:
        state = self.sf.read()
        with self.sf.transaction() as ctx:
            now = ctx.now + shift
            return issuers.mint(ctx.keys, issuers.find(state, issuer), BASE, now, subject, audience, kw.get("extra"), kw.get("lifetime"))

    def form(self, **over) -> dict:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.identity.client_id,
            "scope": MGMT,
            "client_assertion_type": exchange.ASSERTION_TYPE,
            "client_assertion": over.pop("assertion", None) or self.assertion(),
        }
        form.update(over)
        return {k: v for k, v in form.items() if v is not None}

    def run(self, form: dict, tenant: str | None = None, advance: int = 0, base: str = BASE):
        with self.sf.transaction() as ctx:
            ctx.now += advance
            return exchange.exchange(ctx, tenant or self.tenant.id, form, base)


@pytest.fixture
def world(isolated_state) -> World:
    return World(isolated_state)


def refused(result, status: int, error: str, code: int) -> str:
    got_status, body = result
    assert got_status == status, body
    assert body["error"] == error
    assert body["error_codes"] == [code]
    desc = body["error_description"]
    assert desc.startswith(f"AADSTS{code}: ")
    assert re.search(r" Trace ID: [0-9a-f-]{36} Correlation ID: [0-9a-f-]{36} Timestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", desc), desc
    assert body["trace_id"] in desc and body["correlation_id"] in desc and body["timestamp"] in desc
    assert "access_token" not in body
    return desc


def test_exchange_answers_the_identitys_v1_token(world):
    status, body = world.run(world.form())
    assert status == 200
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == tokens.LIFETIME == body["ext_expires_in"]
    state = world.sf.read()
    with world.sf.transaction() as ctx:
        verdict = verify.verify(state, ctx.keys, ctx.now, body["access_token"], "https://management.azure.com/")
    assert verdict["valid"], verdict["reason"]
    claims = verdict["claims"]
    assert claims["aud"] == "https://management.azure.com"  # the scope without /.default
    assert claims["iss"] == f"https://sts.windows.net/{world.tenant.id}/"
    assert claims["appid"] == world.identity.client_id and claims["appidacr"] == "2"
    assert claims["oid"] == claims["sub"] == world.identity.principal_id
    assert claims["tid"] == world.tenant.id and claims["ver"] == "1.0" and claims["idtyp"] == "app"
    assert claims["xms_mirid"] == world.identity.resource_id.replace("/resourceGroups/", "/resourcegroups/")
    assert "xms_az_rid" not in claims  # no host resource: the workload runs outside Azure
    assert verdict["header"]["alg"] == "RS256"


def test_the_v1_endpoint_takes_resource_and_answers_strings(world):
    """`/oauth2/token` (what the v1 discovery document names) takes `resource` where v2 takes
    `scope`, and answers every value as a string, with the times and the resource."""
    form = world.form(scope=None, resource="https://vault.azure.net")
    v2_form = world.form()  # (forms first: each mints its assertion in a transaction of its own)
    with world.sf.transaction() as ctx:
        status, body = exchange.exchange(ctx, world.tenant.id, form, BASE, v1=True)
    assert status == 200, body
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "expires_on", "not_before", "resource", "access_token"}
    assert all(isinstance(v, str) for v in body.values()) and body["resource"] == "https://vault.azure.net"
    assert int(body["expires_on"]) - int(body["expires_in"]) <= int(body["not_before"]) + tokens.LIFETIME
    claims = json.loads(__import__("base64").urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert claims["aud"] == "https://vault.azure.net" and claims["appid"] == world.identity.client_id
    with world.sf.transaction() as ctx:  # v1 without `resource` is a missing parameter, as v2 without `scope`
        refused(exchange.exchange(ctx, world.tenant.id, v2_form, BASE, v1=True), 400, "invalid_request", 900144)


def test_the_tenant_id_in_any_case_and_az_s_double_slash_scope_work(world):
    status, body = world.run(world.form(scope="https://management.core.windows.net//.default"), tenant=world.tenant.id.upper())
    assert status == 200
    claims = json.loads(__import__("base64").urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert claims["aud"] == "https://management.core.windows.net/"


def test_each_exchange_is_logged(world):
    world.run(world.form())
    assert any(e["operation"] == "Issue token" and "federated" in e["detail"] for e in world.sf.log_entries())


def test_unknown_tenant_is_90002(world):
    desc = refused(world.run(world.form(), tenant="nowhere"), 400, "invalid_tenant", 90002)
    assert "Tenant 'nowhere' not found" in desc


def test_a_tenants_display_name_is_not_a_tenant_for_entra(world):
    """Entra names a tenant by its id or a verified domain (msi's tenants have none), never by its display name."""
    for ref in (world.tenant.name, world.tenant.name.upper()):
        desc = refused(world.run(world.form(), tenant=ref), 400, "invalid_tenant", 90002)
        assert f"Tenant '{ref}' not found" in desc
    assert not any(e["operation"] == "Issue token" for e in world.sf.log_entries())


@pytest.mark.parametrize("missing", exchange.PARAMETERS)
def test_each_missing_parameter_is_900144(world, missing):
    form = world.form()
    del form[missing]
    desc = refused(world.run(form), 400, "invalid_request", 900144)
    assert f"The request body must contain the following parameter: '{missing}'." in desc


def test_an_empty_parameter_counts_as_missing(world):
    refused(world.run(world.form(client_assertion="")), 400, "invalid_request", 900144)


def test_a_wrong_assertion_type_is_refused(world):
    desc = refused(world.run(world.form(client_assertion_type="urn:x")), 400, "invalid_request", 900144)
    assert "'client_assertion_type'" in desc


def test_another_grant_type_is_70003(world):
    desc = refused(world.run(world.form(grant_type="authorization_code")), 400, "unsupported_grant_type", 70003)
    assert "'authorization_code'" in desc


@pytest.mark.parametrize("scope", ["https://management.azure.com/user_impersonation", "https://management.azure.com", "/.default"])
def test_a_scope_without_default_is_1002012(world, scope):
    desc = refused(world.run(world.form(scope=scope)), 400, "invalid_scope", 1002012)
    assert "/.default suffixed" in desc


def test_unknown_client_id_is_700016(world):
    desc = refused(world.run(world.form(client_id="00000000-0000-0000-0000-000000000001")), 400, "unauthorized_client", 700016)
    assert f"was not found in the directory '{world.tenant.id}'" in desc


def test_client_id_of_another_tenant_is_700016(world):
    with world.sf.transaction() as ctx:
        other = directory.create_tenant(ctx, "Fabrikam")
    refused(world.run(world.form(), tenant=other.id), 400, "unauthorized_client", 700016)


def test_after_a_subscription_transfer_the_new_tenant_does_not_know_the_identity(world):
    from msi_cli.core import moves

    with world.sf.transaction() as ctx:
        other = directory.create_tenant(ctx, "Fabrikam")
        moves.move_subscription(ctx, ctx.state.default_subscription_id, other.id)
    refused(world.run(world.form(), tenant=other.id), 400, "unauthorized_client", 700016)
    refused(world.run(world.form(), tenant=world.tenant.id), 400, "unauthorized_client", 700016)


def test_a_malformed_assertion_is_50027(world):
    refused(world.run(world.form(assertion="not-a-jwt")), 400, "invalid_request", 50027)


def test_an_untrusted_issuer_is_700211(world):
    with world.sf.transaction() as ctx:
        issuers.create(ctx, "other", "generic")
    token = world.assertion(issuer="other")
    desc = refused(world.run(world.form(assertion=token)), 401, "invalid_client", 700211)
    assert f"presented assertion issuer '{BASE}/issuers/other'" in desc


def test_issuer_matching_is_case_sensitive(world):
    with world.sf.transaction() as ctx:
        federation.remove(ctx, world.identity, "main")
        federation.add(ctx, world.identity, "main", issuers.url(BASE, "GH"), SUBJECT)
    refused(world.run(world.form()), 401, "invalid_client", 700211)


def test_a_system_assigned_identity_has_no_federated_credentials(world):
    with world.sf.transaction() as ctx:
        vm = lifecycle.create_resource(ctx, "vm1", "vm", None, None, None, system_assigned=True)
        client_id = ctx.state.identities[vm.system_principal_id].client_id
    refused(world.run(world.form(client_id=client_id)), 401, "invalid_client", 700211)


def test_a_bad_signature_is_700027(world):
    token = world.assertion()
    head, body, sig = token.split(".")
    forged = ".".join([head, body, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")])
    refused(world.run(world.form(assertion=forged)), 401, "invalid_client", 700027)


def test_a_token_signed_by_another_msi_issuer_under_a_trusted_url_is_700027(world):
    with world.sf.transaction() as ctx:
        issuers.create(ctx, "evil", "github")
    evil = world.assertion(issuer="evil")
    claims = json.loads(__import__("base64").urlsafe_b64decode(evil.split(".")[1] + "=="))
    claims["iss"] = issuers.url(BASE, "gh")
    with world.sf.transaction() as ctx:
        token = issuers.sign(ctx.keys, ctx.state.issuers["evil"], claims)
    desc = refused(world.run(world.form(assertion=token)), 401, "invalid_client", 700027)
    assert "The key was not found" in desc


def test_an_issuer_msi_does_not_play_has_no_keys_here(world):
    with world.sf.transaction() as ctx:
        federation.add(ctx, world.identity, "real-github", "https://token.actions.githubusercontent.com", SUBJECT)
        token = issuers.sign(ctx.keys, ctx.state.issuers["gh"], {**issuers.claims_for(ctx.state.issuers["gh"], BASE, ctx.now, SUBJECT, AUD),
                                                                 "iss": "https://token.actions.githubusercontent.com"})
    refused(world.run(world.form(assertion=token)), 401, "invalid_client", 700027)


def test_the_issuer_is_looked_up_at_the_servers_address(world):
    """The same token is not trusted when the issuers are published elsewhere (another port)."""
    refused(world.run(world.form(), base="https://127.0.0.1:9999"), 401, "invalid_client", 700027)


def test_an_expired_assertion_is_700024_with_the_times(world):
    token = world.assertion()  # GitHub: 5 minutes
    assert world.run(world.form(assertion=token), advance=299)[0] == 200
    desc = refused(world.run(world.form(assertion=token), advance=300), 401, "invalid_client", 700024)
    assert "Client assertion is not within its valid time range. Current time: " in desc
    assert re.search(r"Current time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.0000000Z, assertion valid from .+Z, expiry time of assertion .+Z\.", desc)


def test_a_not_yet_valid_assertion_is_700024(world):
    token = world.assertion(shift=120)
    refused(world.run(world.form(assertion=token)), 401, "invalid_client", 700024)
    assert world.run(world.form(assertion=token), advance=120)[0] == 200


def test_a_wrong_subject_is_700213(world):
    token = world.assertion(subject="repo:octo-org/app:ref:refs/heads/dev")
    desc = refused(world.run(world.form(assertion=token)), 401, "invalid_client", 700213)
    assert "presented assertion subject 'repo:octo-org/app:ref:refs/heads/dev'" in desc


def test_a_subject_differing_only_in_case_is_7002138(world):
    token = world.assertion(subject="repo:Octo-Org/app:ref:refs/heads/main")
    desc = refused(world.run(world.form(assertion=token)), 401, "invalid_client", 7002138)
    assert "case-sensitive" in desc


def test_a_wrong_audience_is_70021_naming_issuer_subject_audience(world):
    token = world.assertion(audience="api://something-else")
    desc = refused(world.run(world.form(assertion=token)), 400, "invalid_request", 70021)
    assert f"Assertion Issuer: '{BASE}/issuers/gh'. Assertion Subject: '{SUBJECT}'. Assertion Audience: 'api://something-else'." in desc


def test_audience_matching_is_case_sensitive(world):
    refused(world.run(world.form(assertion=world.assertion(audience="api://azureadtokenexchange"))), 400, "invalid_request", 70021)


def test_an_unknown_resource_is_500011(world):
    desc = refused(world.run(world.form(scope="https://unknown.example.com/.default")), 400, "invalid_resource", 500011)
    assert "The resource principal named https://unknown.example.com was not found" in desc


def test_checks_run_in_entras_order(world):
    """Several faults at once: the earliest check answers."""
    expired_wrong_subject = world.assertion(subject="repo:x/y:ref:refs/heads/main", lifetime=10)
    refused(world.run(world.form(assertion=expired_wrong_subject), advance=60), 401, "invalid_client", 700024)
    refused(world.run(world.form(assertion=expired_wrong_subject, client_id="00000000-0000-0000-0000-000000000001")),
            400, "unauthorized_client", 700016)
    refused(world.run(world.form(assertion=expired_wrong_subject, scope="x"), tenant="nowhere"), 400, "invalid_tenant", 90002)
    refused(world.run(world.form(assertion="junk", scope="x")), 400, "invalid_scope", 1002012)
    refused(world.run(world.form(assertion=world.assertion(audience="api://x"), scope="https://unknown.example.com/.default")),
            400, "invalid_request", 70021)


def test_removing_the_credential_refuses_the_next_exchange(world):
    token = world.assertion()
    assert world.run(world.form(assertion=token))[0] == 200
    with world.sf.transaction() as ctx:
        federation.remove(ctx, world.identity, "main")
    refused(world.run(world.form(assertion=token)), 401, "invalid_client", 700211)


def test_deleting_the_identity_deletes_its_credentials(world):
    with world.sf.transaction() as ctx:
        lifecycle.delete(ctx, ctx.state.identities[world.identity.principal_id])
    state = world.sf.read()
    assert state.federated_credentials == {}
    refused(world.run(world.form()), 400, "unauthorized_client", 700016)


def test_kubernetes_tokens_carry_the_audience_in_a_list(world):
    with world.sf.transaction() as ctx:
        issuers.create(ctx, "aks", "kubernetes")
        federation.add(ctx, world.identity, "k8s", issuers.url(BASE, "aks"), "system:serviceaccount:default:app")
    token = world.assertion(issuer="aks", subject="system:serviceaccount:default:app", audience=None)
    assert world.run(world.form(assertion=token))[0] == 200


def test_the_client_request_id_becomes_the_correlation_id(world):
    form = world.form()
    with world.sf.transaction() as ctx:
        status, body = exchange.exchange(ctx, "nowhere", form, BASE, correlation_id="11111111-2222-3333-4444-555555555555")
    assert body["correlation_id"] == "11111111-2222-3333-4444-555555555555"
    assert "Correlation ID: 11111111-2222-3333-4444-555555555555" in body["error_description"]


def test_an_assertion_whose_expiry_no_date_holds_is_700024_not_a_crash(world):
    """Another issuer may write any number: the refusal prints it as it is."""
    state = world.sf.read()
    with world.sf.transaction() as ctx:
        claims = issuers.claims_for(issuers.find(state, "gh"), BASE, ctx.now + 3600, SUBJECT, AUD)  # not valid yet
        claims["exp"] = 10**18
        token = issuers.sign(ctx.keys, issuers.find(state, "gh"), claims)
    desc = refused(world.run(world.form(assertion=token)), 401, "invalid_client", 700024)
    assert "expiry time of assertion 1000000000000000000." in desc


def test_msi_as_an_issuer_makes_tokens_of_at_most_366_days(world):
    from msi_cli.errors import InvalidArgument

    found = issuers.find(world.sf.read(), "gh")
    assert issuers.claims_for(found, BASE, 0, SUBJECT, AUD, lifetime=366 * 86400)["exp"] == 366 * 86400
    with pytest.raises(InvalidArgument, match="at most 366d"):
        issuers.claims_for(found, BASE, 0, SUBJECT, AUD, lifetime=366 * 86400 + 1)


def test_an_assertion_nested_too_deeply_is_50027(world):
    import base64

    deep = base64.urlsafe_b64encode(b"[" * 30000 + b"]" * 30000).decode().rstrip("=")
    refused(world.run(world.form(assertion=f"{deep}.{deep}.sig")), 400, "invalid_request", 50027)
