"""A plan: the changes an estate makes to a state, for people (`+`/`~`/`-` lines) and for
msi_cli.core.estate.apply (what to create, change and delete, in order)."""

from __future__ import annotations

from dataclasses import dataclass, field

from msi_cli.core.estate.schema import AssignmentSpec, CredentialSpec, Estate, IdentitySpec, ResourceSpec
from msi_cli.core.model import FederatedCredential, Identity, Resource, ResourceGroup, RoleAssignment

CREATE, UPDATE, DELETE = "+", "~", "-"
ACTIONS = {CREATE: "create", UPDATE: "update", DELETE: "delete"}

GroupKey = tuple[str, str]  # subscription name, group name
ObjKey = tuple[str, str, str]  # subscription name, group name, object name
ResKey = tuple[str, str, str, str]  # subscription name, group name, ARM type, name
ScopeKey = tuple[str, ...]  # subscription name [, group [, ARM type, name]]
PrincipalKey = tuple[str, tuple[str, ...]]  # ("identity", ObjKey) or ("resource", ResKey)
AssignKey = tuple[PrincipalKey, str, ScopeKey]  # principal, role id, scope


@dataclass(slots=True)
class Change:
    op: str
    kind: str
    name: str
    detail: str = ""
    destructive: bool = False

    def text(self) -> str:
        return f"{self.op} {self.kind} {self.name}" + (f": {self.detail}" if self.detail else "")

    def shape(self) -> dict[str, str]:
        return {"action": ACTIONS[self.op], "kind": self.kind, "name": self.name, "detail": self.detail}


@dataclass(slots=True)
class ResourceWork:
    spec: ResourceSpec
    key: ResKey
    existing: Resource | None
    enable_system: bool = False
    disable_system: bool = False
    attach: list[ObjKey] = field(default_factory=list)
    detach: list[str] = field(default_factory=list)  # identity resource ids, dangling ones included


@dataclass(slots=True)
class Plan:
    estate: Estate
    prune: bool
    changes: list[Change] = field(default_factory=list)
    kept: int = 0  # objects in the state that the file does not name, left alone without --prune
    # what apply does, in order
    rename_tenants: dict[str, str] = field(default_factory=dict)  # id -> new display name
    rename_subscriptions: dict[str, str] = field(default_factory=dict)  # id -> new display name
    new_tenants: list[tuple[str, str | None]] = field(default_factory=list)  # name, id to keep
    new_subscriptions: list[tuple[str, str, str | None]] = field(default_factory=list)  # name, tenant name, id
    move_subscriptions: list[tuple[str, str]] = field(default_factory=list)  # id of one that holds nothing, tenant name
    groups: dict[GroupKey, tuple[str, str, str, bool]] = field(default_factory=dict)  # sub, name, location, declared
    identities: dict[ObjKey, tuple[IdentitySpec, Identity | None]] = field(default_factory=dict)
    relocate: dict[ObjKey, str] = field(default_factory=dict)  # identities whose guessed location is corrected
    guessed_groups: set[GroupKey] = field(default_factory=set)  # groups made where their first member is (msi import az)
    relocate_groups: dict[GroupKey, str] = field(default_factory=dict)  # groups whose guessed location is settled
    credentials: list[tuple[ObjKey, CredentialSpec]] = field(default_factory=list)  # to create or update
    resources: dict[ResKey, ResourceWork] = field(default_factory=dict)
    assignments: list[tuple[AssignmentSpec, AssignKey]] = field(default_factory=list)  # to create
    delete_assignments: list[RoleAssignment] = field(default_factory=list)
    delete_credentials: list[tuple[Identity, FederatedCredential]] = field(default_factory=list)
    delete_resources: list[Resource] = field(default_factory=list)
    delete_identities: list[Identity] = field(default_factory=list)
    delete_groups: list[ResourceGroup] = field(default_factory=list)
    remapped: dict[str, str] = field(default_factory=dict)  # an id the file asked to keep -> the id it gets

    @property
    def destructive(self) -> bool:
        return any(c.op == DELETE or c.destructive for c in self.changes)

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "delete": 0}
        for c in self.changes:
            out[ACTIONS[c.op]] += 1
        return out


def low(value: str) -> str:
    return value.lower()


