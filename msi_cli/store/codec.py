"""State <-> plain documents (what TOML holds), with validation and the schema upgrade chain.

A document is a dict of TOML-able values. Optional fields are left out rather than written as a
null (TOML has none), so `load(dump(s)) == s` holds for every state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from msi_cli.core import arm, timefmt
from msi_cli.core.model import (
    SCHEMA_VERSION,
    DeletedPrincipal,
    FederatedCredential,
    Issuer,
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
    UserAssignment,
)
from msi_cli.errors import MsiError
from msi_cli.store import upgrades

COLLECTIONS = ("tenants", "subscriptions", "resource_groups", "resources", "identities", "principals", "role_assignments", "deleted_principals",
               "federated_credentials", "issuers")  # the last two are optional tables: absent means empty
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Simulated time stays between these instants: every date msi writes (certificates run 90 days
# past now) must still be a valid X.509 and JWT time, and a 64-bit time_t.
EARLIEST_YEAR = 1970
LATEST = 221845392000  # 9000-01-01T00:00:00Z: no stored time may reach it
LATEST_NOW = timefmt.epoch(timefmt.LATEST)  # the simulated now stays a year short, so certificates and keys it makes fit


def valid_instant(value: str) -> bool:
    """An ISO instant as msi writes it that names a real second (no 30 February, no hour 24),
    between 1970 and 9000."""
    m = _ISO.fullmatch(value)
    if m is None:
        return False
    year, month, day, hour, minute, second = map(int, m.groups())
    if not (EARLIEST_YEAR <= year < 9000 and 1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= day <= (_DAYS[month - 1] if month != 2 or leap else 28)


def _shown(value: str) -> str:
    return value if len(value) <= 80 else value[:77] + "..."
_THUMB = re.compile(r"[0-9A-F]{40}")

# A document, or one record of it: TOML-shaped data, checked value by value as it is read.
Doc = dict[str, Any]
# Where a value sits in a document: keys and array indexes, ("resources", 3, "type").
DocPath = tuple[str | int, ...]
# The model objects a collection's records describe.
Record = (Tenant | Subscription | ResourceGroup | Resource | Identity | ServicePrincipal | RoleAssignment
          | DeletedPrincipal | FederatedCredential | Issuer)
# `rows` output: per collection, (key, the object's fields in model order); the fields are of
# mixed types, unpacked straight into the model's constructors.
Rows = dict[str, list[tuple[str, tuple[Any, ...]]]]


class InvalidDocument(Exception):
    """The document breaks the schema. `path` locates the value: ("resources", 3, "type")."""

    def __init__(self, path: DocPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# ---- schema upgrades: UPGRADES[n] turns a version-n document into a version-(n+1) one ----------

def _v1_user_identities(doc: Doc) -> Doc:
    """Schema 1 listed a resource's user-assigned identities by id only (deleting an identity
    detached it, so each named a live identity). Schema 2 records, per entry, the principal and
    client ids the resource saw when it was attached, so that an entry outlives its identity."""
    identities = doc.get("identities")
    by_id: dict[str, Doc] = {}
    if isinstance(identities, list):
        for rec in identities:
            if isinstance(rec, dict) and rec.get("kind") == USER and isinstance(rec.get("resource_id"), str):
                by_id[rec["resource_id"].lower()] = rec
    resources = doc.get("resources")
    for rec in resources if isinstance(resources, list) else ():
        ids = rec.get("user_identities") if isinstance(rec, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            continue  # left as it is: validation reports it
        entries: list[dict[str, str]] = []
        for rid in ids:
            found = by_id.get(rid.lower(), {})
            entry: dict[str, str] = {"id": rid}
            for field, key in (("principal_id", "principal_id"), ("client_id", "client_id")):
                if isinstance(found.get(key), str):
                    entry[field] = found[key]
            entries.append(entry)
        rec["user_identities"] = entries
    return doc


# Later steps live in store/upgrades.py. A step's number is the version it upgrades from.
UPGRADES: dict[int, Callable[[Doc], Doc]] = {1: _v1_user_identities, 2: upgrades.add_resource_groups}


def upgrade(doc: Doc, upgrades: dict[int, Callable[[Doc], Doc]] | None = None) -> Doc:
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


def _opt(rec: Doc, key: str, value: object) -> Doc:
    if value is not None:
        rec[key] = value
    return rec


def tenant_rec(t: Tenant) -> Doc:
    return {
        "id": t.id,
        "name": t.name,
        "created": t.created,
        "signing_keys": [
            {"kid": k.kid, "created": k.created, "signs_until": k.signs_until, "published_until": k.published_until}
            for k in t.signing_keys
        ],
    }


def subscription_rec(s: Subscription) -> Doc:
    return {"id": s.id, "name": s.name, "tenant": s.tenant_id, "created": s.created}


def resource_group_rec(g: ResourceGroup) -> Doc:
    return {"name": g.name, "subscription": g.subscription_id, "location": g.location, "created": g.created}


def resource_rec(r: Resource) -> Doc:
    rec: Doc = {
        "name": r.name,
        "type": r.type,
        "subscription": r.subscription_id,
        "resource_group": r.resource_group,
        "location": r.location,
        "created": r.created,
    }
    _opt(rec, "system_principal_id", r.system_principal_id)
    rec["user_identities"] = [
        {"id": u.resource_id, "principal_id": u.principal_id, "client_id": u.client_id} for u in r.user_assigned
    ]
    return rec


def identity_rec(i: Identity) -> Doc:
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


def principal_rec(p: ServicePrincipal) -> Doc:
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


def deleted_principal_rec(d: DeletedPrincipal) -> Doc:
    return {
        "id": d.id,
        "app_id": d.app_id,
        "tenant": d.tenant_id,
        "display_name": d.display_name,
        "alternative_names": list(d.alternative_names),
        "deleted": d.deleted,
    }


def role_assignment_rec(a: RoleAssignment) -> Doc:
    return {
        "id": a.id,
        "principal_id": a.principal_id,
        "role_definition_id": a.role_definition_id,
        "scope": a.scope,
        "created": a.created,
    }


def federated_credential_rec(c: FederatedCredential) -> Doc:
    return {"identity": c.identity_id, "name": c.name, "issuer": c.issuer, "subject": c.subject,
            "audiences": list(c.audiences), "created": c.created}


def issuer_rec(i: Issuer) -> Doc:
    return {"name": i.name, "kind": i.kind, "kid": i.kid, "created": i.created}


def header(state: State) -> Doc:
    return {
        "schema": state.schema,
        "clock_offset": state.clock_offset,
        "default_subscription": state.default_subscription_id,
    }


def records(state: State) -> dict[str, list[tuple[str, Doc]]]:
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
        "federated_credentials": [(k, federated_credential_rec(v)) for k, v in state.federated_credentials.items()],
        "issuers": [(k, issuer_rec(v)) for k, v in state.issuers.items()],
    }


def dump(state: State) -> Doc:
    doc = header(state)
    for coll, recs in records(state).items():
        if recs:
            doc[coll] = [rec for _, rec in recs]
    return doc


# ---- loading and validation ----------------------------------------------------------------------


class _Reader:
    """Typed access to one record, raising InvalidDocument with the value's path."""

    __slots__ = ("rec", "path")
    rec: Doc
    path: DocPath

    def __init__(self, rec: object, path: DocPath) -> None:
        if not isinstance(rec, dict):
            raise InvalidDocument(path, "expected a table")
        self.rec = rec
        self.path = path

    def string(self, key: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.rec.get(key)
        if not isinstance(value, str):
            raise InvalidDocument(self.path + (key,), f"'{key}' must be a string" if key in self.rec else f"'{key}' is missing")
        if pattern is not None and not pattern.fullmatch(value):
            raise InvalidDocument(self.path + (key,), f"'{key}' has an invalid value '{_shown(value)}'")
        return value

    def guid(self, key: str) -> str:
        value = self.string(key)
        if not (arm.is_guid(value) and value == value.lower()):
            raise InvalidDocument(self.path + (key,), f"'{key}' must be a lower-case GUID, not '{_shown(value)}'")
        return value

    def optional_guid(self, key: str) -> str | None:
        """A GUID, or None when the key is absent."""
        return None if self.rec.get(key) is None else self.guid(key)

    def time(self, key: str) -> str:
        value = self.string(key)
        if not valid_instant(value):
            raise InvalidDocument(
                self.path + (key,), f"'{key}' is not a real UTC time between 1970 and 9000 (YYYY-MM-DDTHH:MM:SSZ): '{_shown(value)}'"
            )
        return value

    def text(self, key: str, what: str, limit: int) -> str:
        """A display name: 1-`limit` printable characters."""
        value = self.string(key)
        self.follows(key, arm.validate_display_name, what, value, limit)
        return value

    def strings(self, key: str, check: Callable[[str], bool] | None = None) -> list[str]:
        value = self.rec.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidDocument(self.path + (key,), f"'{key}' must be a list of strings")
        if check is not None:
            for v in value:
                if not check(v):
                    raise InvalidDocument(self.path + (key,), f"'{key}' holds an invalid value '{_shown(v)}'")
        return list(value)

    def ordered(self, *keys: str) -> None:
        """The named times do not go backwards (created <= valid until, start <= end)."""
        values = [self.rec[k] for k in keys]
        if values != sorted(values):
            raise InvalidDocument(self.path + (keys[-1],), f"'{keys[-1]}' comes before '{keys[0]}'")

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


def _collection(doc: Doc, name: str) -> list[_Reader]:
    value = doc.get(name, [])
    if not isinstance(value, list):
        raise InvalidDocument((name,), f"'{name}' must be an array of tables")
    return [_Reader(rec, (name, n)) for n, rec in enumerate(value)]


_KID = re.compile(r"[A-Za-z0-9_-]{27}")


def _arm_id(value: str) -> bool:
    """A printable ARM id (subscription, resource group or resource scope)."""
    return arm.parse_id(value) is not None and not _UNPRINTABLE.search(value)


_UNPRINTABLE = arm._UNPRINTABLE


def _tenant(r: _Reader) -> Tenant:
    t = Tenant(r.guid("id"), r.text("name", "tenant", 256), r.time("created"))
    for k in r.tables("signing_keys"):
        t.signing_keys.append(SigningKey(k.string("kid", _KID), k.time("created"), k.time("signs_until"), k.time("published_until")))
        k.ordered("created", "signs_until", "published_until")
    return t


def _subscription(r: _Reader) -> Subscription:
    return Subscription(r.guid("id"), r.text("name", "subscription", 64), r.guid("tenant"), r.time("created"))


def _resource_group(r: _Reader) -> ResourceGroup:
    g = ResourceGroup(r.string("name"), r.guid("subscription"), r.string("location"), r.time("created"))
    r.follows("name", arm.validate_resource_group, g.name)
    r.follows("location", arm.validate_location, g.location)
    return g


def _identity(r: _Reader) -> Identity:
    kind = r.string("kind")
    if kind not in (SYSTEM, USER):
        raise InvalidDocument(r.path + ("kind",), f"'kind' must be {SYSTEM} or {USER}, not '{kind}'")
    i = Identity(
        r.guid("principal_id"), r.guid("client_id"), r.guid("tenant"), kind, r.text("name", "identity", 260),
        r.string("resource_id"), r.string("location"), r.time("created"),
    )
    r.follows("location", arm.validate_location, i.location)
    parsed = arm.parse_id(i.resource_id)
    if parsed is None or parsed.name is None or not _arm_id(i.resource_id):
        raise InvalidDocument(r.path + ("resource_id",), f"'resource_id' is not a resource id: '{i.resource_id}'")
    if kind == USER:
        if parsed.arm_type is None or parsed.arm_type.lower() != arm.IDENTITY_ARM_TYPE.lower() or parsed.name != i.name:
            raise InvalidDocument(r.path + ("resource_id",), f"'resource_id' does not name identity '{i.name}'")
        r.follows("name", arm.validate_identity_name, i.name)
    return i


def _resource(r: _Reader) -> Resource:
    type_key = r.string("type")
    if type_key not in arm.RESOURCE_TYPES:
        raise InvalidDocument(r.path + ("type",), f"unknown resource type '{type_key}'")
    res = Resource(
        r.string("name"), type_key, r.guid("subscription"), r.string("resource_group"), r.string("location"),
        r.time("created"), r.optional_guid("system_principal_id"),
        [UserAssignment(u.string("id"), u.guid("principal_id"), u.guid("client_id")) for u in r.tables("user_identities")],
    )
    for n, entry in enumerate(res.user_assigned):
        if not _arm_id(entry.resource_id):
            raise InvalidDocument(r.path + ("user_identities", n, "id"), f"'id' has an invalid value '{_shown(entry.resource_id)}'")
    r.follows("name", arm.validate_resource_name, type_key, res.name)
    r.follows("resource_group", arm.validate_resource_group, res.resource_group)
    r.follows("location", arm.validate_location, res.location)
    return res


def _principal(r: _Reader) -> ServicePrincipal:
    sp = ServicePrincipal(
        r.guid("id"), r.guid("app_id"), r.guid("tenant"), r.text("display_name", "service principal", 260),
        r.strings("alternative_names", _alternative_name),
    )
    for c in r.tables("key_credentials"):
        sp.key_credentials.append(KeyCredential(c.guid("key_id"), c.string("thumbprint", _THUMB), c.time("start"), c.time("end")))
        c.ordered("start", "end")
    return sp


def _alternative_name(value: str) -> bool:
    return 0 < len(value) <= 1024 and not _UNPRINTABLE.search(value)


def _deleted_principal(r: _Reader) -> DeletedPrincipal:
    return DeletedPrincipal(
        r.guid("id"), r.guid("app_id"), r.guid("tenant"), r.text("display_name", "service principal", 260),
        r.strings("alternative_names", _alternative_name), r.time("deleted"),
    )


def _role_assignment(r: _Reader) -> RoleAssignment:
    a = RoleAssignment(r.guid("id"), r.guid("principal_id"), r.guid("role_definition_id"), r.string("scope"), r.time("created"))
    if not _arm_id(a.scope):
        raise InvalidDocument(r.path + ("scope",), f"'scope' is not a subscription, resource group or resource id: '{a.scope}'")
    return a


def _federated_credential(r: _Reader) -> FederatedCredential:
    from msi_cli.core import federation

    c = FederatedCredential(r.guid("identity"), r.string("name"), r.string("issuer"), r.string("subject"), r.strings("audiences"), r.time("created"))
    r.follows("name", federation.validate, c)
    return c


def _issuer(r: _Reader) -> Issuer:
    from msi_cli.core import issuers

    i = Issuer(r.string("name"), r.string("kind"), r.string("kid", _KID), r.time("created"))
    r.follows("name", issuers.validate_name, i.name)
    if i.kind not in issuers.KINDS:
        raise InvalidDocument(r.path + ("kind",), f"'kind' must be one of {', '.join(issuers.KINDS)}, not '{i.kind}'")
    return i


PARSERS: dict[str, Callable[[_Reader], Record]] = {
    "tenants": _tenant,
    "subscriptions": _subscription,
    "resource_groups": _resource_group,
    "resources": _resource,
    "identities": _identity,
    "principals": _principal,
    "role_assignments": _role_assignment,
    "deleted_principals": _deleted_principal,
    "federated_credentials": _federated_credential,
    "issuers": _issuer,
}


def _state_key(obj: Record) -> str:
    """The key `obj` is filed under in its State collection."""
    if isinstance(obj, (Resource, ResourceGroup)):
        return obj.id.lower()
    if isinstance(obj, Identity):
        return obj.principal_id
    if isinstance(obj, FederatedCredential):
        return f"{obj.identity_id}/{obj.name.lower()}"
    if isinstance(obj, Issuer):
        return obj.name.lower()
    return obj.id


def check_header(doc: Doc) -> State:
    top = _Reader(doc, ())
    offset = doc.get("clock_offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise InvalidDocument(("clock_offset",), "'clock_offset' must be a whole number of seconds")
    from msi_cli.core.timefmt import real_now

    now = real_now()
    if not -now <= offset <= LATEST_NOW - now:
        raise InvalidDocument(("clock_offset",), "'clock_offset' puts the simulated clock outside 1970-01-01 to 8999-01-01")
    return State(schema=doc["schema"], clock_offset=offset, default_subscription_id=top.guid("default_subscription"))


def check_record(coll: str, rec: object, index: int) -> Record:
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
        seen: set[str] = set()
        for entry in res.user_assigned:
            low = entry.resource_id.lower()
            parsed = arm.parse_id(entry.resource_id)
            if parsed is None or (parsed.arm_type or "").lower() != arm.IDENTITY_ARM_TYPE.lower() or low in seen:
                raise InvalidDocument(("resources", n, "user_identities"), f"resource '{res.name}' holds an invalid or repeated user-assigned identity id {entry.resource_id}")
            seen.add(low)
            # a live principal must be the identity the entry names; any other is a deleted one's (dangling)
            live = state.identities.get(entry.principal_id)
            if live is not None and (live.kind != USER or live.resource_id.lower() != low or live.client_id != entry.client_id):
                raise InvalidDocument(("resources", n, "user_identities"), f"resource '{res.name}' records principal {entry.principal_id} for {entry.resource_id}, which is another identity")
    for n, (pid, identity) in enumerate(state.identities.items()):
        if identity.kind == SYSTEM and pid not in system_owner:
            raise InvalidDocument(("identities", n, "principal_id"), f"system-assigned identity {pid} belongs to no resource")
        sp = state.principals.get(pid)
        if sp is None:
            raise InvalidDocument(("identities", n, "principal_id"), f"identity {pid} has no service principal")
    for n, sp in enumerate(state.principals.values()):
        owner = state.identities.get(sp.id)
        if owner is None or owner.client_id != sp.app_id:
            raise InvalidDocument(("principals", n, "id"), f"service principal {sp.id} has no matching identity")
        if sp.tenant_id not in state.tenants:
            raise InvalidDocument(("principals", n, "tenant"), f"service principal {sp.id} names an unknown tenant")
    for n, d in enumerate(state.deleted_principals.values()):
        if d.id in state.principals or d.id in state.identities:
            raise InvalidDocument(("deleted_principals", n, "id"), f"principal {d.id} is both live and deleted")
        if d.tenant_id not in state.tenants:
            raise InvalidDocument(("deleted_principals", n, "tenant"), f"deleted principal {d.id} names an unknown tenant")
    _check_federation(state)


def _check_federation(state: State) -> None:
    counts: dict[str, int] = {}
    pairs: set[tuple[str, str, str]] = set()
    for n, c in enumerate(state.federated_credentials.values()):
        identity = state.identities.get(c.identity_id)
        if identity is None or identity.kind != USER:
            raise InvalidDocument(("federated_credentials", n, "identity"),
                                  f"federated identity credential '{c.name}' names no user-assigned identity ({c.identity_id})")
        counts[c.identity_id] = counts.get(c.identity_id, 0) + 1
        if counts[c.identity_id] > 20:
            raise InvalidDocument(("federated_credentials", n, "identity"), f"identity '{identity.name}' has more than 20 federated identity credentials")
        if (c.identity_id, c.issuer, c.subject) in pairs:
            raise InvalidDocument(("federated_credentials", n, "subject"), f"identity '{identity.name}' has two federated identity credentials with issuer '{c.issuer}' and subject '{c.subject}'")
        pairs.add((c.identity_id, c.issuer, c.subject))


def load(doc: Doc) -> State:
    """Build and validate a State from an up-to-date document."""
    state = check_header(doc)
    for coll in COLLECTIONS:
        target = getattr(state, coll)
        for r in _collection(doc, coll):
            obj = PARSERS[coll](r)
            key = _state_key(obj)
            if key in target:
                raise InvalidDocument(r.path, f"duplicate {coll[:-1].replace('_', ' ')} '{key}'")
            target[key] = obj
    check_links(state)
    return state


# ---- rows: the parse cache's compact form ----------------------------------------------------------
# Each object as a tuple of its fields, in model order: quick to unmarshal, quick to compare, and
# turned into objects without any checks (the cache only ever holds a state that passed `load`).


def rows(state: State) -> Rows:
    return {
        "tenants": [
            (k, (t.id, t.name, t.created, tuple((s.kid, s.created, s.signs_until, s.published_until) for s in t.signing_keys)))
            for k, t in state.tenants.items()
        ],
        "subscriptions": [(k, (s.id, s.name, s.tenant_id, s.created)) for k, s in state.subscriptions.items()],
        "resource_groups": [(k, (g.name, g.subscription_id, g.location, g.created)) for k, g in state.resource_groups.items()],
        "resources": [
            (k, (r.name, r.type, r.subscription_id, r.resource_group, r.location, r.created, r.system_principal_id,
                 tuple((u.resource_id, u.principal_id, u.client_id) for u in r.user_assigned)))
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
        "federated_credentials": [
            (k, (c.identity_id, c.name, c.issuer, c.subject, tuple(c.audiences), c.created)) for k, c in state.federated_credentials.items()
        ],
        "issuers": [(k, (i.name, i.kind, i.kid, i.created)) for k, i in state.issuers.items()],
    }


def from_rows(head: Doc, table: Rows) -> State:
    """Objects from `rows` output, without checks."""
    state = State(head["schema"], head.get("clock_offset", 0), head["default_subscription"])
    state.tenants = {k: Tenant(i, n, c, [SigningKey(*s) for s in keys]) for k, (i, n, c, keys) in table["tenants"]}
    state.subscriptions = {k: Subscription(*r) for k, r in table["subscriptions"]}
    state.resource_groups = {k: ResourceGroup(*r) for k, r in table.get("resource_groups", ())}
    state.resources = {
        k: Resource(n, t, s, g, loc, c, p, [UserAssignment(*e) for e in u]) for k, (n, t, s, g, loc, c, p, u) in table["resources"]
    }
    state.identities = {k: Identity(*r) for k, r in table["identities"]}
    state.principals = {
        k: ServicePrincipal(i, a, t, d, list(alt), [KeyCredential(*c) for c in creds])
        for k, (i, a, t, d, alt, creds) in table["principals"]
    }
    state.role_assignments = {k: RoleAssignment(*r) for k, r in table["role_assignments"]}
    state.deleted_principals = {
        k: DeletedPrincipal(i, a, t, d, list(alt), gone) for k, (i, a, t, d, alt, gone) in table.get("deleted_principals", ())
    }
    state.federated_credentials = {
        k: FederatedCredential(i, n, iss, sub, list(aud), c) for k, (i, n, iss, sub, aud, c) in table.get("federated_credentials", ())
    }
    state.issuers = {k: Issuer(*r) for k, r in table.get("issuers", ())}
    return state


# Any: each function takes its own collection's model class; `coll` picks the pair at run time.
RECORD_OF: dict[str, Callable[[Any], Doc]] = {
    "tenants": tenant_rec,
    "subscriptions": subscription_rec,
    "resource_groups": resource_group_rec,
    "resources": resource_rec,
    "identities": identity_rec,
    "principals": principal_rec,
    "role_assignments": role_assignment_rec,
    "deleted_principals": deleted_principal_rec,
    "federated_credentials": federated_credential_rec,
    "issuers": issuer_rec,
}


def locate(text: str, path: DocPath) -> int | None:
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
