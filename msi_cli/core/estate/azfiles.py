"""The az JSON files `msi import az` reads: finding them, and which az command printed each.

Each file is recognised by its content, never its name: `az account list` (subscriptions, with
`cloudName` and `tenantId`), `az group list` (type Microsoft.Resources/resourceGroups), `az
identity list` (Microsoft.ManagedIdentity/userAssignedIdentities, with `clientId`), `az role
assignment list` (Microsoft.Authorization/roleAssignments), and `az resource list` / `az vm list`
/ `az webapp list` (anything else with an ARM `id` and `type`, whose `identity` blocks name the
resources' identities). az's quirks are taken as they come: ids in mixed case (compare them
case-insensitively), `resourcegroups` in lower case in identity ids, locations as display names in
`az webapp list` ("East US"), `principalType` ServicePrincipal for managed identities.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from msi_cli.core import arm
from msi_cli.errors import InvalidArgument

TYPE_KEYS = {t.arm_type.lower(): key for key, t in arm.RESOURCE_TYPES.items() if key != "functionapp"}
GROUP_TYPE = "microsoft.resources/resourcegroups"
IDENTITY_TYPE = arm.IDENTITY_ARM_TYPE.lower()
ASSIGNMENT_TYPE = "microsoft.authorization/roleassignments"


def collect(paths: Iterable[Path]) -> list[Path]:
    """The files named, and the *.json files of the folders named, in a stable order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file()))
        elif path.exists():
            out.append(path)
        else:
            from msi_cli.errors import NotFound

            raise NotFound(f"{path}: no such file or folder")
    if not out:
        raise InvalidArgument("no az JSON files found", hint="save them with az ... -o json > NAME.json")
    return out


def kind_of(items: list[Any]) -> str:
    """Which az command printed this list."""
    dicts = [i for i in items if isinstance(i, dict)]
    if not dicts:
        return "empty" if not items else "unknown"
    first = dicts[0]
    type_ = str(first.get("type", "")).lower()
    if "cloudName" in first and "tenantId" in first:
        return "az account list"
    if type_ == GROUP_TYPE:
        return "az group list"
    if type_ == ASSIGNMENT_TYPE or ("roleDefinitionId" in first and "principalId" in first and "scope" in first):
        return "az role assignment list"
    if all(str(d.get("type", "")).lower() == IDENTITY_TYPE and "clientId" in d for d in dicts):
        return "az identity list"
    if "id" in first and "type" in first:  # read alike; named for the report by what only each prints
        if all("vmId" in d or "hardwareProfile" in d for d in dicts):
            return "az vm list"
        if all("defaultHostName" in d or "serverFarmId" in d for d in dicts):
            return "az functionapp list" if all("functionapp" in str(d.get("kind", "")) for d in dicts) else "az webapp list"
        return "az resource list"
    return "unknown"


def arm_location(value: object) -> str:
    """ARM's location name: `az webapp list` prints display names ("East US")."""
    return arm.location_name(str(value or "eastus"))
