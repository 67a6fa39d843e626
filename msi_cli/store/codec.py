"""State <-> plain documents (what TOML holds), with validation and the schema upgrade chain.

A document is a dict of TOML-able values. Optional fields are left out rather than written as a
null (TOML has none), so `load(dump(s)) == s` holds for every state.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from msi_cli.core import arm
from msi_cli.core.model import (
    SCHEMA_VERSION,
    DeletedPrincipal,
    SYSTEM,
    USER,
    Identity,
    KeyCredential,
    Resource,
    ResourceGroup,
    RoleAssignment,
    ServicePrincipal,
    SigningKey,
    State,
    Subscription,
    Tenant,
)
from msi_cli.errors import MsiError
from msi_cli.store import upgrades

COLLECTIONS = ("tenants", "subscriptions", "resource_groups", "resources", "identities", "principals", "role_assignments", "deleted_principals")
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_THUMB = re.compile(r"[0-9A-F]{40}")


class InvalidDocument(Exception):
    """The document breaks the schema. `path` locates the value: ("resources", 3, "type")."""

    def __init__(self, path: tuple, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# ---- schema upgrades: UPGRADES[n] turns a version-n document into a version-(n+1) one ----------


# Each step lives in store/upgrades.py. A step's number is the version it upgrades from; steps
# written on parallel branches are renumbered when merged, as each only needs to run once, in order.
UPGRADES: dict[int, Callable[[dict], dict]] = {1: upgrades.add_resource_groups}


def upgrade(doc: dict, upgrades: dict[int, Callable[[dict], dict]] | None = None) -> dict:
    chain = UPGRADES if upgrades is None else upgrades
    version = doc.get("schema")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidDocument(("schema",), "no valid 'schema' version: this is not an msi-cli state file")
    if version > SCHEMA_VERSION:
        raise InvalidDocument(
            ("schema",),
            f"schema version {version} is newer than this msi-cli understands ({SCHEMA_VERSION}); upgrade msi-cli",
        )
    while version < SCHEMA_VERSION:
        doc = chain[version](doc)
        version += 1
        doc["schema"] = version
    return doc


# ---- records -------------------------------------------------------------------------------------


def _opt(rec: dict, key: str, value) -> dict:
    if value is not None:
        rec[key] = value
    return rec


def tenant_rec(t: Tenant) -> dict:
    return {
        "id": t.id,
        "name": t.name,
        "created": t.created,
        "signing_keys": [
            {"kid": k.kid, "created": k.created, "signs_until": k.signs_until, "published_until": k.published_until}
            for k in t.signing_keys
        ],
    }


def subscription_rec(s: Subscription) -> dict:
    return {"id": s.id, "name": s.name, "tenant": s.tenant_id, "created": s.created}


def resource_group_rec(g: ResourceGroup) -> dict:
    return {"name": g.name, "subscription": g.subscription_id, "location": g.location, "created": g.created}


def resource_rec(r: Resource) -> dict:
    rec = {
        "name": r.name,
        "type": r.type,
        "subscription": r.subscription_id,
        "resource_group": r.resource_group,
        "location": r.location,
        "created": r.created,
    }
    _opt(rec, "system_principal_id", r.system_principal_id)
    rec["user_identities"] = list(r.user_identity_ids)
    return rec


def identity_rec(i: Identity) -> dict:
    return {
        "principal_id": i.principal_id,
        "client_id": i.client_id,
        "tenant": i.tenant_id,
        "kind": i.kind,
        "name": i.name,
        "resource_id": i.resource_id,
        "location": i.location,
        "created": i.created,
    }


def principal_rec(p: ServicePrincipal) -> dict:
    return {
        "id": p.id,
        "app_id": p.app_id,
        "tenant": p.tenant_id,
        "display_name": p.display_name,
        "alternative_names": list(p.alternative_names),
        "key_credentials": [
            {"key_id": c.key_id, "thumbprint": c.thumbprint, "start": c.start, "end": c.end} for c in p.key_credentials
        ],
    }


def deleted_principal_rec(d: DeletedPrincipal) -> dict:
    return {
        "id": d.id,
        "app_id": d.app_id,
        "tenant": d.tenant_id,
        "display_name": d.display_name,
        "alternative_names": list(d.alternative_names),
        "deleted": d.deleted,
    }


def role_assignment_rec(a: RoleAssignment) -> dict:
    return {
        "id": a.id,
        "principal_id": a.principal_id,
        "role_definition_id": a.role_definition_id,
        "scope": a.scope,
        "created": a.created,
    }


def header(state: State) -> dict:
    return {
        "schema": state.schema,
        "clock_offset": state.clock_offset,
        "default_subscription": state.default_subscription_id,
    }


def records(state: State) -> dict[str, list[tuple[str, dict]]]:
    """Each collection's records, in order, with the key that identifies each."""
    return {
        "tenants": [(k, tenant_rec(v)) for k, v in state.tenants.items()],
        "subscriptions": [(k, subscription_rec(v)) for k, v in state.subscriptions.items()],
        "resource_groups": [(k, resource_group_rec(v)) for k, v in state.resource_groups.items()],
        "resources": [(k, resource_rec(v)) for k, v in state.resources.items()],
        "identities": [(k, identity_rec(v)) for k, v in state.identities.items()],
        "principals": [(k, principal_rec(v)) for k, v in state.principals.items()],
        "role_assignments": [(k, role_assignment_rec(v)) for k, v in state.role_assignments.items()],
        "deleted_principals": [(k, deleted_principal_rec(v)) for k, v in state.deleted_principals.items()],
    }


def dump(state: State) -> dict:
    doc = header(state)
    for coll, recs in records(state).items():
        if recs:
            doc[coll] = [rec for _, rec in recs]
    return doc


# ---- loading and validation ----------------------------------------------------------------------


class _Reader:
    """Typed access to one record, raising InvalidDocument with the value's path."""

    __slots__ = ("rec", "path")

    def __init__(self, rec: object, path: tuple) -> None:
        if not isinstance(rec, dict):
            raise InvalidDocument(path, "expected a table")
        self.rec = rec
        self.path = path

    def str(self, key: str, pattern: re.Pattern | None = None, optional: bool = False) -> str | None:
        value = self.rec.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise InvalidDocument(self.path + (key,), f"'{key}' must be a string" if key in self.rec else f"'{key}' is missing")
        if pattern is not None and not pattern.fullmatch(value):
            raise InvalidDocument(self.path + (key,), f"'{key}' has an invalid value '{value}'")
        return value

    def guid(self, key: str, optional: bool = False) -> str | None:
        value = self.str(key, optional=optional)
        if value is not None and not (arm.is_guid(value) and value == value.lower()):
            raise InvalidDocument(self.path + (key,), f"'{key}' must be a lower-case GUID, not '{value}'")
        return value

    def time(self, key: str) -> str:
        return self.str(key, _ISO)  # type: ignore[return-value]

    def strings(self, key: str) -> list[str]:
        value = self.rec.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidDocument(self.path + (key,), f"'{key}' must be a list of strings")
        return list(value)

    def follows(self, key: str, rule: Callable[..., None], *args: object) -> None:
        """Apply one of Azure's naming rules (msi_cli.core.arm) to a field, reporting at it."""
        try:
            rule(*args)
        except MsiError as exc:
            raise InvalidDocument(self.path + (key,), exc.message) from None

    def tables(self, key: str) -> list[_Reader]:
        value = self.rec.get(key, [])
        if not isinstance(value, list):
            raise InvalidDocument(self.path + (key,), f"'{key}' must be a list of tables")
        return [_Reader(v, self.path + (key, n)) for n, v in enumerate(value)]


def _collection(doc: dict, name: str) -> list[_Reader]:
    value = doc.get(name, [])
    if not isinstance(value, list):
        raise InvalidDocument((name,), f"'{name}' must be an array of tables")
    return [_Reader(rec, (name, n)) for n, rec in enumerate(value)]


_KID = re.compile(r"[A-Za-z0-9_-]{27}")


def _tenant(r: _Reader) -> Tenant:
    t = Tenant(r.guid("id"), r.str("name"), r.time("created"))  # type: ignore[arg-type]
    for k in r.tables("signing_keys"):
        t.signing_keys.append(SigningKey(k.str("kid", _KID), k.time("created"), k.time("signs_until"), k.time("published_until")))  # type: ignore[arg-type]
    return t


def _subscription(r: _Reader) -> Subscription:
    return Subscription(r.guid("id"), r.str("name"), r.guid("tenant"), r.time("created"))  # type: ignore[arg-type]


def _resource_group(r: _Reader) -> ResourceGroup:
    g = ResourceGroup(r.str("name"), r.guid("subscription"), r.str("location"), r.time("created"))  # type: ignore[arg-type]
    r.follows("name", arm.validate_resource_group, g.name)
    r.follows("location", arm.validate_location, g.location)
    return g


def _identity(r: _Reader) -> Identity:
    kind = r.str("kind")
    if kind not in (SYSTEM, USER):
        raise InvalidDocument(r.path + ("kind",), f"'kind' must be {SYSTEM} or {USER}, not '{kind}'")
    i = Identity(
        r.guid("principal_id"), r.guid("client_id"), r.guid("tenant"), kind, r.str("name"),  # type: ignore[arg-type]
        r.str("resource_id"), r.str("location"), r.time("created"),  # type: ignore[arg-type]
    )
    parsed = arm.parse_id(i.resource_id)
    if parsed is None or parsed.name is None:
        raise InvalidDocument(r.path + ("resource_id",), f"'resource_id' is not a resource id: '{i.resource_id}'")
    if kind == USER:
        if parsed.arm_type is None or parsed.arm_type.lower() != arm.IDENTITY_ARM_TYPE.lower() or parsed.name != i.name:
            raise InvalidDocument(r.path + ("resource_id",), f"'resource_id' does not name identity '{i.name}'")
        r.follows("name", arm.validate_identity_name, i.name)
    return i


def _resource(r: _Reader) -> Resource:
    type_key = r.str("type")
    if type_key not in arm.RESOURCE_TYPES:
        raise InvalidDocument(r.path + ("type",), f"unknown resource type '{type_key}'")
    res = Resource(
        r.str("name"), type_key, r.guid("subscription"), r.str("resource_group"), r.str("location"),  # type: ignore[arg-type]
        r.time("created"), r.guid("system_principal_id", optional=True), r.strings("user_identities"),
    )
    r.follows("name", arm.validate_resource_name, type_key, res.name)
    r.follows("resource_group", arm.validate_resource_group, res.resource_group)
    return res


def _principal(r: _Reader) -> ServicePrincipal:
    sp = ServicePrincipal(
        r.guid("id"), r.guid("app_id"), r.guid("tenant"), r.str("display_name"), r.strings("alternative_names"),  # type: ignore[arg-type]
    )
    for c in r.tables("key_credentials"):
        sp.key_credentials.append(KeyCredential(c.guid("key_id"), c.str("thumbprint", _THUMB), c.time("start"), c.time("end")))  # type: ignore[arg-type]
    return sp


def _deleted_principal(r: _Reader) -> DeletedPrincipal:
    return DeletedPrincipal(
        r.guid("id"), r.guid("app_id"), r.guid("tenant"), r.str("display_name"), r.strings("alternative_names"), r.time("deleted"),  # type: ignore[arg-type]
    )


def _role_assignment(r: _Reader) -> RoleAssignment:
    a = RoleAssignment(r.guid("id"), r.guid("principal_id"), r.guid("role_definition_id"), r.str("scope"), r.time("created"))  # type: ignore[arg-type]
    if arm.parse_id(a.scope) is None:
        raise InvalidDocument(r.path + ("scope",), f"'scope' is not a subscription, resource group or resource id: '{a.scope}'")
    return a


PARSERS = {
    "tenants": _tenant,
    "subscriptions": _subscription,
    "resource_groups": _resource_group,
    "resources": _resource,
    "identities": _identity,
    "principals": _principal,
    "role_assignments": _role_assignment,
    "deleted_principals": _deleted_principal,
}


def _state_key(coll: str, obj) -> str:
    if coll in ("resources", "resource_groups"):
        return obj.id.lower()
    if coll == "identities":
        return obj.principal_id
    return obj.id


def check_header(doc: dict) -> State:
    top = _Reader(doc, ())
    offset = doc.get("clock_offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise InvalidDocument(("clock_offset",), "'clock_offset' must be a whole number of seconds")
    return State(schema=doc["schema"], clock_offset=offset, default_subscription_id=top.guid("default_subscription"))  # type: ignore[arg-type]


def check_record(coll: str, rec: object, index: int):
    """Field checks for one record; returns the model object it describes."""
    return PARSERS[coll](_Reader(rec, (coll, index)))


def check_links(state: State) -> None:
    """The invariants that tie records together, over the whole state."""
    for n, s in enumerate(state.subscriptions.values()):
        if s.tenant_id not in state.tenants:
            raise InvalidDocument(("subscriptions", n, "tenant"), f"subscription '{s.name}' names an unknown tenant {s.tenant_id}")
    if state.default_subscription_id not in state.subscriptions:
        raise InvalidDocument(("default_subscription",), "'default_subscription' names an unknown subscription")
    for n, (key, g) in enumerate(state.resource_groups.items()):
        if key != g.id.lower():
            raise InvalidDocument(("resource_groups", n, "name"), f"resource group '{g.name}' is filed under another id")
        if g.subscription_id not in state.subscriptions:
            raise InvalidDocument(("resource_groups", n, "subscription"), f"resource group '{g.name}' names an unknown subscription")
    user_ids: dict[str, Identity] = {}
    for n, i in enumerate(state.identities.values()):
        if i.tenant_id not in state.tenants:
            raise InvalidDocument(("identities", n, "tenant"), f"identity '{i.name}' names an unknown tenant {i.tenant_id}")
        if i.kind == USER:
            group = arm.parse_id(i.resource_id)
            if group is None or arm.resource_group_scope(group.subscription_id, group.resource_group or "").lower() not in state.resource_groups:
                raise InvalidDocument(("identities", n, "resource_id"), f"identity '{i.name}' is in a resource group that does not exist")
            if i.resource_id.lower() in user_ids:
                raise InvalidDocument(("identities", n, "resource_id"), f"two user-assigned identities share the id {i.resource_id}")
            user_ids[i.resource_id.lower()] = i
    system_owner: dict[str, str] = {}
    for n, (key, res) in enumerate(state.resources.items()):
        if key != res.id.lower():
            raise InvalidDocument(("resources", n, "name"), f"resource '{res.name}' is filed under another id")
        if res.subscription_id not in state.subscriptions:
            raise InvalidDocument(("resources", n, "subscription"), f"resource '{res.name}' names an unknown subscription")
        if arm.resource_group_scope(res.subscription_id, res.resource_group).lower() not in state.resource_groups:
            raise InvalidDocument(("resources", n, "resource_group"), f"resource '{res.name}' is in a resource group that does not exist")
        pid = res.system_principal_id
        if pid is not None:
            owner = state.identities.get(pid)
            if owner is None or owner.kind != SYSTEM:
                raise InvalidDocument(("resources", n, "system_principal_id"), f"resource '{res.name}' names a missing system-assigned identity {pid}")
            if pid in system_owner:
                raise InvalidDocument(("resources", n, "system_principal_id"), f"system-assigned identity {pid} is held by two resources")
            system_owner[pid] = res.name
        for rid in res.user_identity_ids:
            if rid.lower() not in user_ids:
                raise InvalidDocument(("resources", n, "user_identities"), f"resource '{res.name}' names a missing user-assigned identity {rid}")
    for n, (pid, identity) in enumerate(state.identities.items()):
        if identity.kind == SYSTEM and pid not in system_owner:
            raise InvalidDocument(("identities", n, "principal_id"), f"system-assigned identity {pid} belongs to no resource")
        sp = state.principals.get(pid)
        if sp is None:
            raise InvalidDocument(("identities", n, "principal_id"), f"identity {pid} has no service principal")
    for n, sp in enumerate(state.principals.values()):
        identity = state.identities.get(sp.id)
        if identity is None or identity.client_id != sp.app_id:
            raise InvalidDocument(("principals", n, "id"), f"service principal {sp.id} has no matching identity")
        if sp.tenant_id not in state.tenants:
            raise InvalidDocument(("principals", n, "tenant"), f"service principal {sp.id} names an unknown tenant")
    for n, d in enumerate(state.deleted_principals.values()):
        if d.id in state.principals or d.id in state.identities:
            raise InvalidDocument(("deleted_principals", n, "id"), f"principal {d.id} is both live and deleted")
        if d.tenant_id not in state.tenants:
            raise InvalidDocument(("deleted_principals", n, "tenant"), f"deleted principal {d.id} names an unknown tenant")


def load(doc: dict) -> State:
    """Build and validate a State from an up-to-date document."""
    state = check_header(doc)
    for coll in COLLECTIONS:
        target = getattr(state, coll)
        for n, r in enumerate(_collection(doc, coll)):
            obj = PARSERS[coll](r)
            key = _state_key(coll, obj)
            if key in target:
                raise InvalidDocument(r.path, f"duplicate {coll[:-1].replace('_', ' ')} '{key}'")
            target[key] = obj
    check_links(state)
    return state


# ---- rows: the parse cache's compact form ----------------------------------------------------------
# Each object as a tuple of its fields, in model order: quick to unmarshal, quick to compare, and
# turned into objects without any checks (the cache only ever holds a state that passed `load`).


def rows(state: State) -> dict[str, list[tuple[str, tuple]]]:
    return {
        "tenants": [
            (k, (t.id, t.name, t.created, tuple((s.kid, s.created, s.signs_until, s.published_until) for s in t.signing_keys)))
            for k, t in state.tenants.items()
        ],
        "subscriptions": [(k, (s.id, s.name, s.tenant_id, s.created)) for k, s in state.subscriptions.items()],
        "resource_groups": [(k, (g.name, g.subscription_id, g.location, g.created)) for k, g in state.resource_groups.items()],
        "resources": [
            (k, (r.name, r.type, r.subscription_id, r.resource_group, r.location, r.created, r.system_principal_id,
                 tuple(r.user_identity_ids)))
            for k, r in state.resources.items()
        ],
        "identities": [
            (k, (i.principal_id, i.client_id, i.tenant_id, i.kind, i.name, i.resource_id, i.location, i.created))
            for k, i in state.identities.items()
        ],
        "principals": [
            (k, (p.id, p.app_id, p.tenant_id, p.display_name, tuple(p.alternative_names),
                 tuple((c.key_id, c.thumbprint, c.start, c.end) for c in p.key_credentials)))
            for k, p in state.principals.items()
        ],
        "role_assignments": [
            (k, (a.id, a.principal_id, a.role_definition_id, a.scope, a.created)) for k, a in state.role_assignments.items()
        ],
        "deleted_principals": [
            (k, (d.id, d.app_id, d.tenant_id, d.display_name, tuple(d.alternative_names), d.deleted))
            for k, d in state.deleted_principals.items()
        ],
    }


def from_rows(head: dict, table: dict) -> State:
    """Objects from `rows` output, without checks."""
    state = State(head["schema"], head.get("clock_offset", 0), head["default_subscription"])
    state.tenants = {k: Tenant(i, n, c, [SigningKey(*s) for s in keys]) for k, (i, n, c, keys) in table["tenants"]}
    state.subscriptions = {k: Subscription(*r) for k, r in table["subscriptions"]}
    state.resource_groups = {k: ResourceGroup(*r) for k, r in table.get("resource_groups", ())}
    state.resources = {k: Resource(n, t, s, g, loc, c, p, list(u)) for k, (n, t, s, g, loc, c, p, u) in table["resources"]}
    state.identities = {k: Identity(*r) for k, r in table["identities"]}
    state.principals = {
        k: ServicePrincipal(i, a, t, d, list(alt), [KeyCredential(*c) for c in creds])
        for k, (i, a, t, d, alt, creds) in table["principals"]
    }
    state.role_assignments = {k: RoleAssignment(*r) for k, r in table["role_assignments"]}
    state.deleted_principals = {
        k: DeletedPrincipal(i, a, t, d, list(alt), gone) for k, (i, a, t, d, alt, gone) in table.get("deleted_principals", ())
    }
    return state


RECORD_OF = {
    "tenants": tenant_rec,
    "subscriptions": subscription_rec,
    "resource_groups": resource_group_rec,
    "resources": resource_rec,
    "identities": identity_rec,
    "principals": principal_rec,
    "role_assignments": role_assignment_rec,
    "deleted_principals": deleted_principal_rec,
}


def locate(text: str, path: tuple) -> int | None:
    """The 1-based line of the value at `path` in a TOML text written as this store writes it."""
    if not path:
        return None
    lines = text.splitlines()
    if len(path) == 1 or not isinstance(path[1], int):
        key = path[0]
        for n, line in enumerate(lines, 1):
            s = line.strip()
            if s.startswith(f"{key} ") or s.startswith(f"{key}=") or s in (f"[[{key}]]", f"[{key}]"):
                return n
        return None
    coll, index = path[0], path[1]
    header = f"[[{coll}]]"
    count = -1
    start = None
    for n, line in enumerate(lines, 1):
        if line.strip() == header:
            count += 1
            if count == index:
                start = n
                break
    if start is None:
        return None
    if len(path) < 3:
        return start
    key = path[2]
    for n in range(start, len(lines)):
        s = lines[n].strip()
        if s.startswith("[") and not s.startswith(f"[[{coll}."):
            break
        if s.startswith(f"{key} ") or s.startswith(f"{key}=") or s == f"[[{coll}.{key}]]":
            return n + 1
    return start
