"""azure-mgmt-msi and azure-mgmt-authorization, unmodified, against msi's ARM endpoint: each
client runs in its own Python process with a clean environment plus `msi env`, authenticates with
azure-identity's ManagedIdentityCredential (the VM's identity), and every change it makes is then
checked with `msi show` / `msi list`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from armkit import Served

pytest.importorskip("azure.mgmt.msi", reason="azure-mgmt-msi is not installed (pip install -e '.[test]')")
pytest.importorskip("azure.mgmt.authorization", reason="azure-mgmt-authorization is not installed (pip install -e '.[test]')")

CLIENT = textwrap.dedent('''
    import json, sys, uuid
    from azure.identity import ManagedIdentityCredential
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.authorization import AuthorizationManagementClient

    base, sub, group, principal = sys.argv[1:5]
    cred = ManagedIdentityCredential()
    scopes = ["https://management.azure.com/.default"]
    msi = ManagedServiceIdentityClient(cred, sub, base_url=base, credential_scopes=scopes)
    auth = AuthorizationManagementClient(cred, sub, base_url=base, credential_scopes=scopes)
    out = {}
    created = msi.user_assigned_identities.create_or_update(group, "sdk-id", {"location": "westeurope"})
    out["created"] = {"id": created.id, "principal": created.principal_id, "client": created.client_id}
    out["listed"] = sorted(i.name for i in msi.user_assigned_identities.list_by_resource_group(group))
    scope = f"/subscriptions/{sub}/resourceGroups/{group}"
    reader = next(iter(auth.role_definitions.list(scope, filter="roleName eq 'Reader'")))
    name = str(uuid.uuid4())
    ra = auth.role_assignments.create(scope, name, {"role_definition_id": reader.id, "principal_id": created.principal_id,
                                                    "principal_type": "ServicePrincipal"})
    out["assignment"] = {"name": ra.name, "scope": ra.scope, "role": ra.role_definition_id}
    out["at_scope"] = [a.name for a in auth.role_assignments.list_for_scope(scope, filter="atScope()")]
    out["assigned_to"] = [a.name for a in auth.role_assignments.list_for_subscription(
        filter=f"assignedTo('{created.principal_id}')")]
    out["deleted"] = auth.role_assignments.delete(scope, name).name
    msi.user_assigned_identities.delete(group, "sdk-id")
    try:
        msi.user_assigned_identities.get(group, "sdk-id")
    except HttpResponseError as exc:
        out["after_delete"] = [exc.status_code, exc.error.code]
    print(json.dumps(out))
''')


@pytest.fixture
def served(tmp_path, isolated_state):
    s = Served(tmp_path)
    s.msi("create-resource", "runner", "--type", "vm", "-g", "ci", "--system-assigned")
    sub = s.msi_json("list", "subscriptions")[0]["id"]
    s.msi("grant", "runner", "--role", "Owner", "--scope", f"/subscriptions/{sub}")
    s.start()
    yield s
    s.stop()


def test_management_sdks_create_grant_and_delete_through_msi(served):
    sub = served.msi_json("list", "subscriptions")[0]["id"]
    principal = served.msi_json("show", "runner")["identity"]["principalId"]
    proc = subprocess.run([sys.executable, "-c", CLIENT, served.https_url, sub, "ci", principal],
                          env=served.client_env("runner"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + served.log_path.read_text()
    out = json.loads(proc.stdout)
    assert out["listed"] == ["sdk-id"]
    assert out["assignment"]["scope"] == f"/subscriptions/{sub}/resourceGroups/ci"
    assert out["assignment"]["role"].endswith("acdd72a7-3385-48ef-bd42-f606fba81ae7")
    assert out["assignment"]["name"] in out["at_scope"] and out["deleted"] == out["assignment"]["name"]
    assert out["assigned_to"] == [out["assignment"]["name"]]  # not the runner's own Owner assignment
    assert out["after_delete"] == [404, "ResourceNotFound"]
    # every change went through msi's own state and log
    ops = [e["operation"] for e in served.msi_json("log")]
    assert ops[-4:] == ["Create user-assigned identity", "Create role assignment", "Delete role assignment",
                        "Delete user-assigned identity"]
    deleted = served.msi_json("list", "principals", "--deleted")
    assert out["created"]["principal"] in [d["id"] for d in deleted]
