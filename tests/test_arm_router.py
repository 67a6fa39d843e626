"""The ARM router in-process: authentication, authorization and every route, against a real
state file; each change checked in msi's own state and activity log."""

from __future__ import annotations

import pytest

from armkit import BASE, error_of, make_world

UAI = "providers/Microsoft.ManagedIdentity/userAssignedIdentities"


@pytest.fixture
def w(isolated_state):
    world = make_world(isolated_state)
    world.caller("admin", "Owner")
    return world


# ---- metadata ----------------------------------------------------------------------------------------


def test_metadata_is_the_full_cloud_document_with_this_server_as_resource_manager(w):
    doc = w.call("GET", "/metadata/endpoints", api="2022-09-01").json()
    assert doc["resourceManager"] == BASE + "/"
    assert doc["authentication"]["audiences"] == ["https://management.core.windows.net/", "https://management.azure.com/"]
    assert doc["authentication"]["loginEndpoint"] == BASE
    assert {"storage", "keyVaultDns", "acrLoginServer", "sqlServerHostname", "mhsmDns"} <= set(doc["suffixes"])
    assert {"portal", "graph", "graphAudience", "microsoftGraphResourceId", "batch", "media", "activeDirectoryDataLake",
            "sqlManagement", "name"} <= set(doc)
    old = w.call("GET", "/metadata/endpoints", api="2019-05-01").json()
    assert isinstance(old, list) and old[0] == doc


# ---- authentication --------------------------------------------------------------------------------------


def test_requests_without_a_valid_token_get_arms_401s(w):
    path = "/subscriptions"
    resp = w.call("GET", path)
    assert error_of(resp) == (401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    assert dict(resp.headers)["WWW-Authenticate"].startswith('Bearer authorization_uri="https://login.windows.net/", error="invalid_token"')
    assert error_of(w.call("GET", path, headers={"authorization": "Basic abc"}))[1] == "AuthenticationFailedInvalidHeader"
    before = w.sf.path.read_bytes()
    refused = w.call("PUT", f"/subscriptions/{w.sub}/resourcegroups/sneaky", {"location": "eastus"}, token="not.a.jwt")
    assert refused.status == 401 and w.sf.path.read_bytes() == before  # nothing changed, nothing logged
    assert error_of(w.call("GET", path, token="not.a.jwt")) == (401, "InvalidAuthenticationToken", "The access token is invalid.")
    good = w.token("admin")
    head, claims, sig = good.split(".")
    tampered = f"{head}.{claims}.{sig[:-4]}AAAA"
    assert error_of(w.call("GET", path, token=tampered))[1] == "InvalidAuthenticationToken"


def test_a_token_for_another_audience_is_refused_with_the_allowed_list(w):
    token = w.token("admin", "https://vault.azure.net")
    status, code, message = error_of(w.call("GET", "/subscriptions", token=token))
    assert (status, code) == (401, "InvalidAuthenticationTokenAudience")
    assert message == (
        "The access token has been obtained for wrong audience or resource 'https://vault.azure.net'. It should exactly "
        "match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net',"
        "'https://management.azure.com/','https://management.azure.com'."
    )
    for audience in ("https://management.azure.com", "https://management.azure.com/", "https://management.core.windows.net/"):
        assert w.call("GET", "/subscriptions", token=w.token("admin", audience)).status == 200


def test_a_token_expires_on_the_simulated_clock(w, cli):
    token = w.token("admin")
    assert w.call("GET", "/subscriptions", token=token).status == 200
    cli.ok("clock", "advance", "25h")
    status, code, message = error_of(w.call("GET", "/subscriptions", token=token))
    assert (status, code) == (401, "ExpiredAuthenticationToken")
    assert message.startswith("The access token expiry UTC time '") and "is earlier than current UTC time" in message


def test_a_token_from_another_tenant_is_refused_for_the_subscription(w, cli):
    cli.ok("create-tenant", "Other")
    cli.ok("create-subscription", "other-sub", "--tenant", "Other")
    cli.ok("create-resource", "outsider", "--type", "vm", "--subscription", "other-sub", "--system-assigned")
    status, code, message = error_of(w.call("GET", f"/subscriptions/{w.sub}/resourcegroups", as_="outsider"))
    assert (status, code) == (401, "InvalidAuthenticationTokenTenant")
    assert "associated with this subscription" in message and w.tenant in message


def test_api_version_is_required(w):
    resp = w.call("GET", "/subscriptions", as_="admin", query="")
    assert error_of(resp)[:2] == (400, "MissingApiVersionParameter")


# ---- subscriptions and tenants --------------------------------------------------------------------------


def test_subscriptions_lists_only_those_where_the_caller_holds_a_role(w):
    w.caller("nobody")
    w.caller("scoped", "Reader", w.rg("ci"))
    assert w.call("GET", "/subscriptions", as_="nobody").json() == {"value": []}
    value = w.call("GET", "/subscriptions", as_="scoped").json()["value"]
    assert [s["subscriptionId"] for s in value] == [w.sub]
    sub = value[0]
    assert sub["id"] == f"/subscriptions/{w.sub}" and sub["tenantId"] == w.tenant and sub["state"] == "Enabled"
    assert {"displayName", "authorizationSource", "managedByTenants", "subscriptionPolicies"} <= set(sub)
    assert w.call("GET", f"/subscriptions/{w.sub}", as_="scoped").json() == sub
    assert error_of(w.call("GET", f"/subscriptions/{w.sub}", as_="nobody"))[:2] == (404, "SubscriptionNotFound")
    tenants = w.call("GET", "/tenants", as_="nobody").json()["value"]
    assert [t["tenantId"] for t in tenants] == [w.tenant]


# ---- resource groups -------------------------------------------------------------------------------------


def test_resource_group_lifecycle(w, cli):
    path = f"/subscriptions/{w.sub}/resourcegroups/build"
    created = w.call("PUT", path, {"location": "westeurope"}, as_="admin", api="2024-11-01")
    assert created.status == 201
    assert created.json() == {"id": f"/subscriptions/{w.sub}/resourceGroups/build", "name": "build",
                              "type": "Microsoft.Resources/resourceGroups", "location": "westeurope",
                              "properties": {"provisioningState": "Succeeded"}}
    assert w.call("PUT", path, {"location": "West Europe"}, as_="admin").status == 200
    status, code, message = error_of(w.call("PUT", path, {"location": "eastus"}, as_="admin"))
    assert (status, code) == (409, "InvalidResourceGroupLocation")
    assert message == "Invalid resource group location 'eastus'. The Resource group already exists in location 'westeurope'."
    assert w.call("HEAD", path, as_="admin").status == 204
    assert w.call("HEAD", path + "x", as_="admin").status == 404
    assert w.call("GET", path.upper().replace(w.sub.upper(), w.sub), as_="admin").json()["name"] == "build"
    names = [g["name"] for g in w.call("GET", f"/subscriptions/{w.sub}/resourcegroups", as_="admin").json()["value"]]
    assert sorted(names) == ["build", "ci"]
    cli.ok("create-identity", "deployer", "-g", "build")
    assert w.call("DELETE", path, as_="admin").status == 200
    assert error_of(w.call("GET", path, as_="admin")) == (404, "ResourceGroupNotFound", "Resource group 'build' could not be found.")
    assert "deployer" not in cli.ok("list", "identities").stdout
    ops = [e["operation"] for e in cli.json("log")]
    assert ops[-2:] == ["Delete user-assigned identity", "Delete resource group"]


def test_reader_cannot_create_a_group_and_the_403_names_action_and_scope(w):
    w.caller("reader", "Reader")
    principal = w.principal("reader")
    client = w.state().principals[principal].app_id
    path = f"/subscriptions/{w.sub}/resourcegroups/nope"
    status, code, message = error_of(w.call("PUT", path, {"location": "eastus"}, as_="reader"))
    assert (status, code) == (403, "AuthorizationFailed")
    assert message == (
        f"The client '{client}' with object id '{principal}' does not have authorization to perform action "
        f"'Microsoft.Resources/subscriptions/resourceGroups/write' over scope '{path}' or the scope is invalid. "
        "If access was recently granted, please refresh your credentials."
    )
    assert w.call("GET", f"/subscriptions/{w.sub}/resourcegroups/ci", as_="reader").status == 200
    assert "nope" not in str(w.state().resource_groups)


# ---- user-assigned identities --------------------------------------------------------------------------


def test_user_assigned_identity_lifecycle_through_arm_is_msis_own(w, cli):
    path = f"{w.rg()}/{UAI}/deployer"
    resp = w.call("PUT", path, {"location": "eastus", "tags": {}}, as_="admin", api="2025-05-31-preview")
    assert resp.status == 201
    body = resp.json()
    shown = cli.json("show", "deployer")
    assert shown["id"] == path
    # the identity RP writes its ids with `resourcegroups` in lower case (Azure/azure-cli#27099)
    assert body["id"] == path.replace("/resourceGroups/", "/resourcegroups/") != path
    assert body["properties"] == {"tenantId": w.tenant, "principalId": shown["principalId"], "clientId": shown["clientId"]}
    assert body["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities" and body["location"] == "eastus"
    entry = cli.json("log")[-1]
    assert entry["operation"] == "Create user-assigned identity"
    assert entry["detail"] == f"principalId {shown['principalId']}; by {w.principal('admin')} through Resource Manager"
    assert w.call("PUT", path, {"location": "eastus"}, as_="admin").json() == body  # idempotent, 200
    status, code, _ = error_of(w.call("PUT", path, {"location": "westus"}, as_="admin"))
    assert (status, code) == (409, "InvalidResourceLocation")
    assert w.call("GET", path.lower(), as_="admin").json() == body
    assert w.call("PATCH", path, {"tags": {"a": "b"}}, as_="admin").status == 200
    listed = w.call("GET", f"{w.rg()}/{UAI}", as_="admin").json()["value"]
    assert [i["name"] for i in listed] == ["deployer"]
    assert [i["name"] for i in w.call("GET", f"/subscriptions/{w.sub}/{UAI}", as_="admin").json()["value"]] == ["deployer"]
    assert w.call("DELETE", path, as_="admin").status == 200
    assert w.call("DELETE", path, as_="admin").status == 204
    status, code, message = error_of(w.call("GET", path, as_="admin"))
    assert (status, code) == (404, "ResourceNotFound")
    assert message.startswith("The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/deployer' under resource group 'ci' was not found.")
    assert cli.json("list", "principals", "--deleted")[0]["id"] == shown["principalId"]


def test_identity_put_errors(w):
    missing = f"/subscriptions/{w.sub}/resourceGroups/nowhere/{UAI}/x1x"
    assert error_of(w.call("PUT", missing, {"location": "eastus"}, as_="admin"))[:2] == (404, "ResourceGroupNotFound")
    bad = f"{w.rg()}/{UAI}/-bad"
    assert error_of(w.call("PUT", bad, {"location": "eastus"}, as_="admin"))[:2] == (400, "InvalidResourceName")
    assert error_of(w.call("PUT", f"{w.rg()}/{UAI}/ok1", {}, as_="admin"))[:2] == (400, "LocationRequired")
    assert error_of(w.call("PUT", f"{w.rg()}/{UAI}/ok1", {"location": "9nowhere"}, as_="admin"))[:2] == (
        400, "LocationNotAvailableForResourceType")
    assert error_of(w.call("PUT", f"/subscriptions/{w.sub}/resourcegroups/new1", {"location": "9nowhere"}, as_="admin"))[:2] == (
        400, "LocationNotAvailableForResourceGroup")
    assert error_of(w.call("PUT", f"{w.rg()}/{UAI}/ok1", b"{not json", as_="admin"))[:2] == (400, "InvalidRequestContent")


def test_managed_identity_roles_do_what_azure_says(w):
    w.caller("mic", "Managed Identity Contributor", w.rg())
    w.caller("mio", "Managed Identity Operator", w.rg())
    path = f"{w.rg()}/{UAI}/built"
    assert w.call("PUT", path, {"location": "eastus"}, as_="mic").status == 201
    status, code, message = error_of(w.call("PUT", f"{w.rg()}/{UAI}/other", {"location": "eastus"}, as_="mio"))
    assert (status, code) == (403, "AuthorizationFailed") and "'Microsoft.ManagedIdentity/userAssignedIdentities/write'" in message
    assert w.call("GET", path, as_="mio").status == 200
    assert error_of(w.call("DELETE", path, as_="mio"))[0] == 403


# ---- system-assigned identity and hosting resources ----------------------------------------------------


def test_system_assigned_identity_default(w, cli):
    vm = cli.json("show", "admin")["id"]
    body = w.call("GET", f"{vm}/providers/Microsoft.ManagedIdentity/identities/default", as_="admin").json()
    assert body["name"] == "default" and body["properties"]["principalId"] == w.principal("admin")
    cli.ok("create-resource", "plain", "--type", "vm", "-g", "ci")
    plain = cli.json("show", "plain")["id"]
    assert error_of(w.call("GET", f"{plain}/providers/Microsoft.ManagedIdentity/identities/default", as_="admin"))[:2] == (404, "ResourceNotFound")


def test_vm_identity_assign_and_remove_through_patch(w, cli):
    cli.ok("create-resource", "app1", "--type", "vm", "-g", "ci")
    cli.ok("create-identity", "id1", "-g", "ci")
    vm = cli.json("show", "app1")["id"]
    uai = cli.json("show", "id1")["id"]
    resp = w.call("PATCH", vm, {"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uai: {}}}},
                  as_="admin", api="2024-07-01")
    assert resp.status == 200
    block = resp.json()["identity"]
    shown = cli.json("show", "app1")["identity"]
    assert block["type"] == "SystemAssigned, UserAssigned" and block["principalId"] == shown["principalId"]
    assert block["userAssignedIdentities"][uai]["clientId"] == cli.json("show", "id1")["clientId"]
    assert w.call("GET", vm, as_="admin").json()["identity"] == block
    resp = w.call("PATCH", vm, {"identity": {"type": "SystemAssigned", "userAssignedIdentities": {uai: None}}}, as_="admin")
    assert resp.json()["identity"] == {"type": "SystemAssigned", "principalId": block["principalId"], "tenantId": w.tenant}
    resp = w.call("PATCH", vm, {"identity": {"type": "None"}}, as_="admin")
    assert "identity" not in resp.json()
    assert cli.json("show", "app1")["identity"] == {"type": "None"}
    assert [e["operation"] for e in cli.json("log")[-4:]] == [
        "Enable system-assigned identity", "Assign user-assigned identity", "Remove user-assigned identity",
        "Disable system-assigned identity"]


def test_an_identity_block_without_a_type_is_refused_and_changes_nothing(w, cli, isolated_state):
    cli.ok("create-resource", "app3", "--type", "vm", "-g", "ci", "--system-assigned")
    cli.ok("create-identity", "kept-id", "-g", "ci")
    cli.ok("create-identity", "asked-id", "-g", "ci")
    cli.ok("assign", "app3", "--user-assigned", "kept-id")
    cli.ok("create-resource", "web3", "--type", "webapp", "-g", "ci", "--system-assigned")
    vm, site = cli.json("show", "app3")["id"], cli.json("show", "web3")["id"]
    asked = cli.json("show", "asked-id")["id"]
    token = w.token("admin")  # the tenant's first token adds its signing keys to the state
    before = isolated_state.read_bytes()
    shown = {name: cli.json("show", name)["identity"] for name in ("app3", "web3")}
    for method, target, block in [
        ("PATCH", vm, {"userAssignedIdentities": {asked: {}}}),
        ("PATCH", vm, {}),
        ("PATCH", vm, {"type": None, "userAssignedIdentities": {asked: {}}}),
        ("PUT", vm, {"userAssignedIdentities": {asked: {}}}),
        ("PATCH", site, {}),
    ]:
        status, code, _ = error_of(w.call(method, target, {"identity": block}, token=token, api="2024-07-01"))
        assert (status, code) == (400, "BadRequest"), (method, block)
    assert isolated_state.read_bytes() == before
    assert {name: cli.json("show", name)["identity"] for name in ("app3", "web3")} == shown
    assert list(shown["app3"]["userAssignedIdentities"]) == [cli.json("show", "kept-id")["id"]]


def test_attaching_an_identity_needs_its_assign_action(w, cli):
    cli.ok("create-resource", "app2", "--type", "vm", "-g", "apps")
    cli.ok("create-identity", "id2", "-g", "ids")
    vm = cli.json("show", "app2")["id"]
    uai = cli.json("show", "id2")["id"]
    w.caller("vmadmin", "Contributor", w.rg("apps"))
    body = {"identity": {"type": "UserAssigned", "userAssignedIdentities": {uai: {}}}}
    status, code, message = error_of(w.call("PATCH", vm, body, as_="vmadmin"))
    assert (status, code) == (403, "LinkedAuthorizationFailed")
    assert "'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action'" in message and uai in message
    assert cli.json("show", "app2")["identity"] == {"type": "None"}
    with w.sf.transaction() as ctx:
        from msi_cli.core import roles

        roles.grant(ctx, w.principal("vmadmin"), "Managed Identity Operator", uai)
    assert w.call("PATCH", vm, body, as_="vmadmin").status == 200
    assert list(cli.json("show", "app2")["identity"]["userAssignedIdentities"]) == [uai]


def test_webapp_put_answers_200_and_unknown_resources_404(w, cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "-g", "ci")
    site = cli.json("show", "web1")["id"]
    resp = w.call("PUT", site, {"identity": {"type": "SystemAssigned"}}, as_="admin")
    assert resp.status == 200 and resp.json()["kind"] == "app"
    assert resp.json()["identity"]["principalId"] == cli.json("show", "web1")["identity"]["principalId"]
    missing = f"{w.rg()}/providers/Microsoft.Compute/virtualMachines/ghost"
    assert error_of(w.call("GET", missing, as_="admin"))[:2] == (404, "ResourceNotFound")
    assert error_of(w.call("GET", f"{w.rg()}/providers/Microsoft.Nope/things/x", as_="admin"))[:2] == (404, "InvalidResourceType")


# ---- authorization: role definitions and assignments -------------------------------------------------


def _ra_path(scope: str, guid: str) -> str:
    return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}"


def test_role_definitions_by_name_and_id(w):
    scope = f"/subscriptions/{w.sub}"
    value = w.call("GET", f"{scope}/providers/Microsoft.Authorization/roleDefinitions", as_="admin",
                   query="api-version=2022-05-01-preview&$filter=roleName%20eq%20%27Managed%20Identity%20Operator%27").json()["value"]
    assert [d["name"] for d in value] == ["f1a07417-d97a-45cb-824c-7a7467783830"]
    assert value[0]["id"] == f"{scope}/providers/Microsoft.Authorization/roleDefinitions/f1a07417-d97a-45cb-824c-7a7467783830"
    assert value[0]["properties"]["permissions"][0]["actions"][1] == "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action"
    one = w.call("GET", f"{scope}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7", as_="admin")
    assert one.json()["properties"]["roleName"] == "Reader"
    assert error_of(w.call("GET", f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{'0' * 8}-0000-0000-0000-{'0' * 12}",
                           as_="admin"))[:2] == (400, "RoleDefinitionDoesNotExist")


def test_role_assignment_lifecycle(w, cli):
    w.caller("worker")
    principal = w.principal("worker")
    guid = "11111111-2222-3333-4444-555555555555"
    scope = w.rg()
    body = {"properties": {"principalType": "ServicePrincipal", "principalId": principal,
                           "roleDefinitionId": f"/subscriptions/{w.sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"}}
    resp = w.call("PUT", _ra_path(scope, guid), body, as_="admin", api="2022-04-01")
    assert resp.status == 201
    created = resp.json()
    assert created["name"] == guid and created["properties"]["scope"] == scope
    assert created["properties"]["principalType"] == "ServicePrincipal"
    listed = cli.json("list", "role-assignments", "--principal", principal)
    assert [a["roleDefinitionName"] for a in listed] == ["Reader"] and listed[0]["name"] == guid
    assert error_of(w.call("PUT", _ra_path(scope, guid), body, as_="admin"))[:2] == (409, "RoleAssignmentExists")
    assert error_of(w.call("PUT", _ra_path(scope, "not-a-guid"), body, as_="admin"))[:2] == (400, "InvalidRoleAssignmentId")
    assert w.call("GET", _ra_path(scope, guid), as_="admin").json() == created
    at = w.call("GET", f"{scope}/providers/Microsoft.Authorization/roleAssignments", as_="admin",
                query="api-version=2022-04-01&$filter=atScope()").json()["value"]
    assert guid in [a["name"] for a in at] and all("scope" in a["properties"] for a in at)
    mine = w.call("GET", f"/subscriptions/{w.sub}/providers/Microsoft.Authorization/roleAssignments", as_="admin",
                  query=f"api-version=2022-04-01&$filter=principalId%20eq%20%27{principal}%27").json()["value"]
    assert [a["name"] for a in mine] == [guid]
    deleted = w.call("DELETE", _ra_path(scope, guid), as_="admin")
    assert deleted.status == 200 and deleted.json() == created
    assert w.call("DELETE", _ra_path(scope, guid), as_="admin").status == 204
    assert error_of(w.call("GET", _ra_path(scope, guid), as_="admin"))[:2] == (404, "RoleAssignmentNotFound")
    assert cli.json("list", "role-assignments", "--principal", principal) == []
    assert [e["operation"] for e in cli.json("log")[-2:]] == ["Create role assignment", "Delete role assignment"]


def test_role_assignment_list_filters_are_arms_and_others_are_refused(w, cli):
    w.caller("reader1", "Reader", w.rg())
    w.caller("reader2", "Reader", w.rg())
    mine, other, admin = w.principal("reader1"), w.principal("reader2"), w.principal("admin")
    listing = f"/subscriptions/{w.sub}/providers/Microsoft.Authorization/roleAssignments"

    def listed(path: str, flt: str) -> list[str]:
        resp = w.call("GET", path, as_="admin", query=f"api-version=2022-04-01&$filter={flt}")
        assert resp.status == 200, resp.json()
        return sorted(a["properties"]["principalId"] for a in resp.json()["value"])

    assert listed(listing, f"assignedTo('{mine}')") == [mine]
    assert listed(listing, f"assignedTo(%27{mine.upper()}%27)") == [mine]
    assert listed(listing, f"principalId eq '{other}'") == [other]
    assert listed(listing, "atScope()") == [admin]
    assert listed(f"{w.rg()}/providers/Microsoft.Authorization/roleAssignments", f"atScope() and assignedTo('{mine}')") == [mine]
    assert listed(f"{w.rg()}/providers/Microsoft.Authorization/roleAssignments", "atScope()") == sorted([admin, mine, other])
    assert listed(listing, f"principalId eq '{mine}' and atScope()") == []
    for flt in ("bogus", f"principalId eq {mine}", f"assignedTo({mine})", f"roleDefinitionId eq '{mine}'",
                f"principalId eq '{mine}' and roleDefinitionId eq 'x'"):
        status, code, message = error_of(w.call("GET", listing, as_="admin", query=f"api-version=2022-04-01&$filter={flt}"))
        assert (status, code) == (400, "UnsupportedQuery"), flt
        assert message == (f"The filter '{flt}' is not supported. Supported filters are either 'atScope()' or "
                           "'principalId eq '{value}' or assignedTo('{value}')'.")


def test_only_roles_with_role_assignment_write_may_grant(w):
    w.caller("contrib", "Contributor")
    w.caller("rbac", "Role Based Access Control Administrator")
    w.caller("target")
    body = {"properties": {"principalId": w.principal("target"),
                           "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"}}
    path = _ra_path(f"/subscriptions/{w.sub}", "21111111-2222-3333-4444-555555555555")
    status, code, message = error_of(w.call("PUT", path, body, as_="contrib"))
    assert (status, code) == (403, "AuthorizationFailed")
    assert f"'Microsoft.Authorization/roleAssignments/write' over scope '{path}'" in message
    assert w.call("PUT", path, body, as_="rbac").status == 201
    ghost = dict(body["properties"], principalId="99999999-2222-3333-4444-555555555555")
    status, code, message = error_of(w.call("PUT", _ra_path(f"/subscriptions/{w.sub}", "31111111-2222-3333-4444-555555555555"),
                                            {"properties": ghost}, as_="rbac"))
    assert (status, code) == (400, "PrincipalNotFound") and w.tenant in message


def test_unknown_paths_and_methods(w):
    assert error_of(w.call("GET", "/subscriptions/x/y/z", as_="admin"))[0] == 404
    assert error_of(w.call("GET", f"/subscriptions/{'0' * 8}-0000-0000-0000-{'0' * 12}/resourcegroups", as_="admin"))[:2] == (
        404, "SubscriptionNotFound")
    assert error_of(w.call("POST", "/subscriptions", as_="admin"))[0] == 405


def test_container_app_identity_patch_and_scale_set_list(w, cli):
    cli.ok("create-resource", "capp", "--type", "containerapp", "-g", "ci")
    cli.ok("create-resource", "pool1", "--type", "vmss", "-g", "ci", "--system-assigned")
    app = cli.json("show", "capp")["id"]
    resp = w.call("PATCH", app, {"identity": {"type": "SystemAssigned"}}, as_="admin", api="2025-01-01")
    assert resp.status == 200 and resp.json()["type"] == "Microsoft.App/containerApps"
    assert resp.json()["identity"]["principalId"] == cli.json("show", "capp")["identity"]["principalId"]
    listed = w.call("GET", f"{w.rg()}/providers/Microsoft.Compute/virtualMachineScaleSets", as_="admin").json()["value"]
    assert [(r["name"], r["identity"]["type"]) for r in listed] == [("pool1", "SystemAssigned")]
    bad = w.call("PATCH", app, {"identity": {"type": "Sideways"}}, as_="admin")
    assert error_of(bad)[:2] == (400, "BadRequest")
    ghost = f"{w.rg()}/{UAI}/ghost-id"
    status, code, message = error_of(w.call("PATCH", app, {"identity": {"type": "UserAssigned", "userAssignedIdentities": {ghost: {}}}},
                                            as_="admin"))
    assert (status, code) == (400, "FailedIdentityOperation") and message.startswith(f"Identity operation for resource '{app}' failed")


def test_generic_resource_list_shows_what_the_caller_may_read(w, cli):
    cli.ok("create-identity", "id9", "-g", "ci")
    cli.ok("create-resource", "elsewhere", "--type", "vm", "-g", "other")
    everything = w.call("GET", f"/subscriptions/{w.sub}/resources", as_="admin", api="2021-04-01").json()["value"]
    assert sorted(r["name"] for r in everything) == ["admin", "elsewhere", "id9"]
    in_ci = w.call("GET", f"{w.rg()}/resources", as_="admin").json()["value"]
    assert sorted((r["name"], r["type"]) for r in in_ci) == [
        ("admin", "Microsoft.Compute/virtualMachines"), ("id9", "Microsoft.ManagedIdentity/userAssignedIdentities")]
    filtered = w.call("GET", f"/subscriptions/{w.sub}/resources", as_="admin",
                      query="api-version=2021-04-01&$filter=resourceGroup%20eq%20%27CI%27%20and%20resourceType%20eq%20"
                            "%27Microsoft.ManagedIdentity/userAssignedIdentities%27").json()["value"]
    assert [r["name"] for r in filtered] == ["id9"]
    w.caller("peeker", "Reader", w.rg("other"), group="other")
    seen = w.call("GET", f"/subscriptions/{w.sub}/resources", as_="peeker").json()["value"]
    assert sorted(r["name"] for r in seen) == ["elsewhere", "peeker"]


def test_role_assignments_at_a_resource_or_identity_scope_and_missing_scopes(w, cli):
    w.caller("worker2")
    cli.ok("create-identity", "scoped-id", "-g", "ci")
    vm = cli.json("show", "worker2")["id"]
    uai = cli.json("show", "scoped-id")["id"]
    body = {"properties": {"principalId": w.principal("worker2"),
                           "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/f1a07417-d97a-45cb-824c-7a7467783830"}}
    on_uai = w.call("PUT", _ra_path(uai, "41111111-2222-3333-4444-555555555555"), body, as_="admin")
    assert on_uai.status == 201 and on_uai.json()["properties"]["scope"] == uai
    on_vm = w.call("PUT", _ra_path(vm, "51111111-2222-3333-4444-555555555555"), body, as_="admin")
    assert on_vm.status == 201 and on_vm.json()["properties"]["scope"] == vm
    assert {a["scope"] for a in cli.json("list", "role-assignments", "--principal", "worker2")} == {uai, vm}
    ghost_vm = f"{w.rg()}/providers/Microsoft.Compute/virtualMachines/ghost"
    assert error_of(w.call("PUT", _ra_path(ghost_vm, "61111111-2222-3333-4444-555555555555"), body, as_="admin"))[:2] == (
        404, "ResourceNotFound")
    ghost_rg = f"/subscriptions/{w.sub}/resourceGroups/ghost"
    assert error_of(w.call("PUT", _ra_path(ghost_rg, "71111111-2222-3333-4444-555555555555"), body, as_="admin"))[:2] == (
        404, "ResourceGroupNotFound")


def test_federated_identity_credentials_through_arm_are_msis_own(w, cli):
    """What `az identity federated-credential create|show|list|delete` sends, on msi's own model:
    `msi federation` sees each change and Azure's rules answer with ARM's errors."""
    ident = f"{w.rg()}/{UAI}/deployer"
    assert w.call("PUT", ident, {"location": "eastus"}, as_="admin").status == 201
    path = f"{ident}/federatedIdentityCredentials/app-main"
    props = {"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r:ref:refs/heads/main",
             "audiences": ["api://AzureADTokenExchange"]}
    resp = w.call("PUT", path, {"properties": props}, as_="admin", api="2025-01-31-preview")
    assert resp.status == 201
    body = resp.json()
    assert body == {"id": path, "name": "app-main", "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
                    "properties": props}
    shown = cli.json("federation", "show", "deployer", "app-main")
    assert (shown["issuer"], shown["subject"], shown["audiences"]) == (props["issuer"], props["subject"], props["audiences"])
    assert w.call("PUT", path, {"properties": props}, as_="admin").status == 200  # an update of the same name
    assert w.call("GET", path.lower(), as_="admin").json() == body
    assert [c["name"] for c in w.call("GET", f"{ident}/federatedIdentityCredentials", as_="admin").json()["value"]] == ["app-main"]
    # the pair is unique per identity; the name follows Azure's pattern; exactly one audience
    other = f"{ident}/federatedIdentityCredentials/copy"
    assert error_of(w.call("PUT", other, {"properties": props}, as_="admin"))[:2] == (409, "Conflict")
    bad = f"{ident}/federatedIdentityCredentials/-x"
    assert error_of(w.call("PUT", bad, {"properties": {**props, "subject": "s2"}}, as_="admin"))[:2] == (400, "InvalidResourceName")
    two = {**props, "subject": "s3", "audiences": ["a", "b"]}
    assert error_of(w.call("PUT", other, {"properties": two}, as_="admin"))[:2] == (400, "BadRequest")
    none = {**props, "subject": "s3", "audiences": []}
    status, code, message = error_of(w.call("PUT", other, {"properties": none}, as_="admin"))
    assert (status, code) == (400, "BadRequest") and "exactly one audience, not 0" in message
    absent = {k: v for k, v in props.items() if k != "audiences"} | {"subject": "s3"}  # required, as the REST API says
    assert error_of(w.call("PUT", other, {"properties": absent}, as_="admin"))[:2] == (400, "InvalidRequestContent")
    assert w.call("GET", other, as_="admin").status == 404  # nothing was made
    # a Reader may list, not write
    w.caller("reader", "Reader")
    assert w.call("GET", f"{ident}/federatedIdentityCredentials", as_="reader").status == 200
    status, code, message = error_of(w.call("DELETE", path, as_="reader"))
    assert (status, code) == (403, "AuthorizationFailed") and "federatedIdentityCredentials/delete" in message
    assert w.call("DELETE", path, as_="admin").status == 200
    assert w.call("DELETE", path, as_="admin").status == 204
    assert error_of(w.call("GET", path, as_="admin"))[:2] == (404, "ResourceNotFound")
    assert cli.json("federation", "list", "deployer") == []


def test_a_resource_shows_the_same_identity_block_through_arm_and_msi(w, cli):
    """A deleted identity's entry stays on the VM with the ids it recorded, over ARM as in `msi show`;
    an identity re-created under the same id does not change it."""
    cli.ok("create-identity", "shared-id", "-g", "ci", "-o", "none")
    vm = cli.json("create-resource", "vm9", "--type", "vm", "-g", "ci", "--system-assigned", "--user-assigned", "shared-id")
    cli.ok("delete", "shared-id", "-g", "ci", "--yes", "-o", "none")
    cli.ok("create-identity", "shared-id", "-g", "ci", "-o", "none")
    shown = cli.json("show", "vm9")["identity"]
    assert shown["userAssignedIdentities"] == vm["identity"]["userAssignedIdentities"]
    assert w.call("GET", vm["id"], as_="admin").json()["identity"] == shown


def test_a_body_nested_too_deeply_is_invalid_content_and_is_read_only_after_the_token(w):
    deep = b"[" * 30000 + b"]" * 30000
    path = w.rg("ci")
    assert w.call("PUT", path, deep).status == 401  # no token: the body is never parsed
    for method in ("PUT", "PATCH"):
        status, code, message = error_of(w.call(method, path, deep, as_="admin"))
        assert (status, code) == (400, "InvalidRequestContent") and "nested too deeply" in message


def test_a_federated_credential_field_with_a_lone_surrogate_is_a_400_and_changes_nothing(w):
    ident = w.call("PUT", f"{w.rg('ci')}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
                   {"location": "eastus"}, as_="admin").json()["id"]
    before = w.sf.path.read_bytes()
    body = b'{"properties":{"issuer":"https://i/","subject":"s\\ud800","audiences":["api://AzureADTokenExchange"]}}'
    status, code, message = error_of(w.call("PUT", f"{ident}/federatedIdentityCredentials/evil", body, as_="admin"))
    assert (status, code) == (400, "BadRequest") and "lone surrogate" in message
    assert w.sf.path.read_bytes() == before


def test_a_caller_without_the_right_learns_nothing_of_what_exists(w):
    """ARM authorizes before it looks: the same 403 for a credential list, a credential or a role
    assignment whether its identity, group or resource exists or not."""
    w.caller("nobody")  # no role anywhere
    uai = f"{w.rg('ci')}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
    w.call("PUT", f"{uai}/id1", {"location": "eastus"}, as_="admin")
    ra = "/providers/Microsoft.Authorization/roleAssignments"
    guid = "11111111-2222-3333-4444-555555555555"
    for real, ghost in ((f"{uai}/id1/federatedIdentityCredentials", f"{uai}/ghost/federatedIdentityCredentials"),
                        (f"{uai}/id1/federatedIdentityCredentials/c1", f"{uai}/ghost/federatedIdentityCredentials/c1"),
                        (f"{w.rg('ci')}{ra}", f"{w.rg('secretrg')}{ra}"),
                        (f"{w.rg('ci')}{ra}/{guid}", f"{w.rg('secretrg')}{ra}/{guid}")):
        for path in (real, ghost):
            assert error_of(w.call("GET", path, as_="nobody"))[:2] == (403, "AuthorizationFailed"), path
