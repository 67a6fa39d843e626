"""Azure RBAC's control-plane check (core/authz.py) with the built-in roles' real action lists:
which role may perform which of the actions the ARM endpoint checks."""

from __future__ import annotations

import pytest

from msi_cli.core import authz, roledefs, roles

UAI = "Microsoft.ManagedIdentity/userAssignedIdentities"
RA = "Microsoft.Authorization/roleAssignments"
RG = "Microsoft.Resources/subscriptions/resourceGroups"
VM_WRITE = "Microsoft.Compute/virtualMachines/write"

EXPECTED = {
    # action:               Owner, Contributor, Reader, UAA, RBAC Admin, MI Contributor, MI Operator
    f"{UAI}/read":          (1, 1, 1, 1, 1, 1, 1),
    f"{UAI}/write":         (1, 1, 0, 0, 0, 1, 0),
    f"{UAI}/delete":        (1, 1, 0, 0, 0, 1, 0),
    f"{UAI}/assign/action": (1, 1, 0, 0, 0, 0, 1),
    f"{RA}/read":           (1, 1, 1, 1, 1, 1, 1),
    f"{RA}/write":          (1, 0, 0, 1, 1, 0, 0),
    f"{RA}/delete":         (1, 0, 0, 1, 1, 0, 0),
    f"{RG}/read":           (1, 1, 1, 1, 1, 1, 1),
    f"{RG}/write":          (1, 1, 0, 0, 0, 0, 0),
    VM_WRITE:               (1, 1, 0, 0, 0, 0, 0),
}
ROLES = ("Owner", "Contributor", "Reader", "User Access Administrator", "Role Based Access Control Administrator",
         "Managed Identity Contributor", "Managed Identity Operator")


@pytest.mark.parametrize("action", list(EXPECTED))
def test_built_in_roles_allow_what_azure_documents(action):
    got = tuple(int(authz.role_allows(roles.role(name), action)) for name in ROLES)
    assert got == EXPECTED[action]


def test_wildcards_ignore_case_and_a_star_segment_may_be_empty():
    assert authz.matches("Microsoft.Authorization/*/Write", "microsoft.authorization/roleassignments/write")
    assert authz.matches(f"{UAI}/*/read", f"{UAI}/read")
    assert authz.matches(f"{UAI}/*/read", f"{UAI}/federatedIdentityCredentials/read")
    assert not authz.matches(f"{UAI}/*/read", f"{UAI}/write")
    assert not authz.matches("Microsoft.Support/*", "Microsoft.Supportive/x")
    assert not authz.matches("*/read", "Microsoft.Authorization/roleAssignments/write")


def test_role_ids_are_azures():
    assert {r.name: r.id for r in roledefs.BUILT_IN_ROLES if r.name in ROLES} == {
        "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        "Managed Identity Contributor": "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
    }
