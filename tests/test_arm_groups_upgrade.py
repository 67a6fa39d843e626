"""Resource groups as objects: a version-1 state (groups implicit) loads with the groups its
resources, identities and role assignments use, and the invariants hold from then on."""

from __future__ import annotations

import tomllib

import pytest

from msi_cli.core import groups, lifecycle
from msi_cli.errors import StateError
from msi_cli.store import codec
from msi_cli.store.statefile import StateFile

SUB = "11111111-1111-1111-1111-111111111111"
TENANT = "22222222-2222-2222-2222-222222222222"
P1, C1 = "33333333-3333-3333-3333-333333333331", "44444444-4444-4444-4444-444444444441"
P2, C2 = "33333333-3333-3333-3333-333333333332", "44444444-4444-4444-4444-444444444442"

V1 = f'''schema = 1
clock_offset = 0
default_subscription = "{SUB}"

[[tenants]]
id = "{TENANT}"
name = "Default Directory"
created = "2026-01-01T00:00:00Z"

[[subscriptions]]
id = "{SUB}"
name = "default"
tenant = "{TENANT}"
created = "2026-01-01T00:00:00Z"

[[resources]]
name = "vm1"
type = "vm"
subscription = "{SUB}"
resource_group = "Apps"
location = "westeurope"
created = "2026-02-01T00:00:00Z"
user_identities = []

[[resources]]
name = "vm0"
type = "vm"
subscription = "{SUB}"
resource_group = "apps"
location = "northeurope"
created = "2026-01-15T00:00:00Z"
user_identities = []

[[identities]]
principal_id = "{P2}"
client_id = "{C2}"
tenant = "{TENANT}"
kind = "UserAssigned"
name = "id1"
resource_id = "/subscriptions/{SUB}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
location = "uksouth"
created = "2026-03-01T00:00:00Z"

[[principals]]
id = "{P2}"
app_id = "{C2}"
tenant = "{TENANT}"
display_name = "id1"
alternative_names = ["isExplicit=True", "/subscriptions/{SUB}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"]

[[role_assignments]]
id = "55555555-5555-5555-5555-555555555555"
principal_id = "{P2}"
role_definition_id = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
scope = "/subscriptions/{SUB}/resourceGroups/granted-only"
created = "2026-04-01T00:00:00Z"
'''


def test_a_version_1_state_gets_the_groups_it_uses(isolated_state):
    isolated_state.parent.mkdir(parents=True, exist_ok=True)
    isolated_state.write_text(V1)
    state = StateFile(isolated_state).read()
    assert state.schema == codec.SCHEMA_VERSION
    found = {k: (g.name, g.location, g.created) for k, g in state.resource_groups.items()}
    assert found == {
        f"/subscriptions/{SUB}/resourcegroups/apps": ("Apps", "northeurope", "2026-01-15T00:00:00Z"),  # earliest member
        f"/subscriptions/{SUB}/resourcegroups/ids": ("ids", "uksouth", "2026-03-01T00:00:00Z"),
        f"/subscriptions/{SUB}/resourcegroups/granted-only": ("granted-only", "eastus", "2026-04-01T00:00:00Z"),
    }
    # the next save writes them, and the file loads again unchanged
    with StateFile(isolated_state).transaction() as ctx:
        lifecycle.create_identity(ctx, "id2", "ids", None, None)
    doc = tomllib.loads(isolated_state.read_text())
    assert doc["schema"] == codec.SCHEMA_VERSION and len(doc["resource_groups"]) == 3
    (isolated_state.parent / (isolated_state.name + ".d") / "cache").unlink()  # from the TOML itself
    again = StateFile(isolated_state).read().resource_groups
    assert {k: (g.name, g.location, g.created) for k, g in again.items()} == found


def test_a_resource_in_a_missing_group_does_not_validate(isolated_state):
    sf = StateFile(isolated_state)
    with sf.transaction() as ctx:
        lifecycle.create_resource(ctx, "vm1", "vm", "apps", None, None)
    text = isolated_state.read_text()
    start = text.index("[[resource_groups]]")
    end = text.index("[[resources]]")
    isolated_state.write_text(text[:start] + text[end:])
    with pytest.raises(StateError, match="resource 'vm1' is in a resource group that does not exist"):
        StateFile(isolated_state).read()


def test_msi_commands_create_a_group_on_first_use_and_group_delete_takes_its_members(isolated_state, cli):
    cli.ok("create-identity", "id1", "-g", "fresh", "-l", "westus")
    cli.ok("create-resource", "vm1", "--type", "vm", "-g", "fresh", "--system-assigned", "--user-assigned", "id1")
    sf = StateFile(isolated_state)
    state = sf.read()
    group = groups.find(state, state.default_subscription_id, "FRESH")
    assert group is not None and group.location == "westus"
    listed = cli.json("list", "groups", "-g", "Fresh")
    assert [(g["name"], g["location"], g["id"]) for g in listed] == [("fresh", "westus", group.id)]
    assert "fresh" in cli.ok("list", "groups").stdout
    with sf.transaction() as ctx:
        report = lifecycle.delete_group(ctx, groups.get(ctx.state, ctx.state.default_subscription_id, "fresh"))
    assert len(report["resources"]) == 1 and len(report["identities"]) == 1
    state = sf.read()
    assert not state.resources and not [i for i in state.identities.values()] and groups.find(state, state.default_subscription_id, "fresh") is None
    assert len(cli.json("list", "principals", "--deleted")) == 2
