"""Records <-> model objects, derived from the model's dataclasses.

A record holds an object's fields in the model's order, under the field's name unless RENAMED
says otherwise; None is left out (TOML has no null); a list of model objects is an array of
tables. Reading checks each value as its field's type asks (a string, a list of strings, nested
records) or as CHECKS says (a GUID, a time, a name rule), then AFTER's checks that span fields.
A new model field is a string field at once; give it an entry in CHECKS (and RENAMED) if it needs
more.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import Any, Literal

from msi_cli.core import arm
from msi_cli.core.datatype import fields, is_record
from msi_cli.core.model import (
    SYSTEM,
    USER,
    DeletedPrincipal,
    FederatedCredential,
    Identity,
    Issuer,
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
from msi_cli.store.validation import KID, THUMBPRINT, Doc, Reader, alternative_name, arm_id, shown

# The model objects a collection's records describe.
Record = (Tenant | Subscription | ResourceGroup | Resource | Identity | ServicePrincipal | RoleAssignment
          | DeletedPrincipal | FederatedCredential | Issuer)
# How one value is read from its record: (reader, key) -> the checked value.
Read = Callable[[Reader, str], Any]


def _text(what: str, limit: int) -> Read:
    return lambda r, key: r.text(key, what, limit)


def _matching(pattern: str) -> Read:
    return lambda r, key: r.string(key, pattern)


def _one_of(allowed: tuple[str, ...], message: Callable[[str], str]) -> Read:
    def read(r: Reader, key: str) -> str:
        value = r.string(key)
        if value not in allowed:
            raise r.fail(key, message(value))
        return value
    return read


def _resource_type(r: Reader, key: str) -> str:
    """A type msi models (`vm`, `webapp`, ...) or a plain `Namespace/type` kept without an identity
    (what `msi import az` found): arm.RESOURCE_TYPES answers both."""
    value = r.string(key)
    if value not in arm.RESOURCE_TYPES:
        raise r.fail(key, f"unknown resource type '{value}'")
    return value


def _flag(r: Reader, key: str) -> Literal[True] | None:
    """A flag written only when it is set: absent, or true (`to_record` leaves out anything else)."""
    if key not in r.rec:
        return None
    if r.rec[key] is not True:
        raise r.fail(key, f"'{key}' must be true when present")
    return True


def _arm_id_string(r: Reader, key: str) -> str:
    value = r.string(key)
    if not arm_id(value):
        raise r.fail(key, f"'{key}' has an invalid value '{shown(value)}'")
    return value


# Document keys that differ from the model's field names, per class.
RENAMED: dict[type, dict[str, str]] = {
    Subscription: {"tenant_id": "tenant"},
    ResourceGroup: {"subscription_id": "subscription"},
    UserAssignment: {"resource_id": "id"},
    Resource: {"subscription_id": "subscription", "user_assigned": "user_identities"},
    Identity: {"tenant_id": "tenant"},
    ServicePrincipal: {"tenant_id": "tenant"},
    DeletedPrincipal: {"tenant_id": "tenant"},
    FederatedCredential: {"identity_id": "identity"},
}

GUID: Read = Reader.guid
TIME: Read = Reader.time
_ALT_NAMES: Read = lambda r, key: r.strings(key, alternative_name)  # noqa: E731

# How each field is checked, where its type alone does not say (a plain string).
CHECKS: dict[type, dict[str, Read]] = {
    SigningKey: {"kid": _matching(KID), "created": TIME, "signs_until": TIME, "published_until": TIME},
    Tenant: {"id": GUID, "name": _text("tenant", 256), "created": TIME},
    Subscription: {"id": GUID, "name": _text("subscription", 64), "tenant_id": GUID, "created": TIME},
    ResourceGroup: {"subscription_id": GUID, "created": TIME, "location_guessed": _flag},
    UserAssignment: {"resource_id": _arm_id_string, "principal_id": GUID, "client_id": GUID},
    Resource: {
        "type": _resource_type,
        "subscription_id": GUID, "created": TIME, "system_principal_id": Reader.optional_guid,
    },
    Identity: {
        "kind": _one_of((SYSTEM, USER), lambda v: f"'kind' must be {SYSTEM} or {USER}, not '{v}'"),
        "principal_id": GUID, "client_id": GUID, "tenant_id": GUID, "name": _text("identity", 260), "created": TIME,
        "location_guessed": _flag,
    },
    KeyCredential: {"key_id": GUID, "thumbprint": _matching(THUMBPRINT), "start": TIME, "end": TIME},
    ServicePrincipal: {"id": GUID, "app_id": GUID, "tenant_id": GUID, "display_name": _text("service principal", 260),
                       "alternative_names": _ALT_NAMES},
    DeletedPrincipal: {"id": GUID, "app_id": GUID, "tenant_id": GUID, "display_name": _text("service principal", 260),
                       "alternative_names": _ALT_NAMES, "deleted": TIME},
    RoleAssignment: {"id": GUID, "principal_id": GUID, "role_definition_id": GUID, "created": TIME},
    FederatedCredential: {"identity_id": GUID, "created": TIME},
    Issuer: {"kid": _matching(KID), "created": TIME},
}
# Fields read before the others: the value the other checks depend on.
FIRST: dict[type, str] = {Resource: "type", Identity: "kind"}


# ---- checks that span fields, run once the object is read --------------------------------------

def _resource_group(r: Reader, g: ResourceGroup) -> None:
    r.follows("name", arm.validate_resource_group, g.name)
    r.follows("location", arm.validate_location, g.location)


def _resource(r: Reader, res: Resource) -> None:
    r.follows("name", arm.validate_resource_name, res.type, res.name)
    r.follows("resource_group", arm.validate_resource_group, res.resource_group)
    r.follows("location", arm.validate_location, res.location)


def _identity(r: Reader, i: Identity) -> None:
    r.follows("location", arm.validate_location, i.location)
    parsed = arm.parse_id(i.resource_id)
    if parsed is None or parsed.name is None or not arm_id(i.resource_id):
        raise r.fail("resource_id", f"'resource_id' is not a resource id: '{i.resource_id}'")
    if i.kind == USER:
        if parsed.arm_type is None or parsed.arm_type.lower() != arm.IDENTITY_ARM_TYPE.lower() or parsed.name != i.name:
            raise r.fail("resource_id", f"'resource_id' does not name identity '{i.name}'")
        r.follows("name", arm.validate_identity_name, i.name)
    elif i.location_guessed:  # a system-assigned identity is where its resource is: nothing to guess
        raise r.fail("location_guessed", "'location_guessed' is for user-assigned identities only")


def _role_assignment(r: Reader, a: RoleAssignment) -> None:
    if not arm_id(a.scope):
        raise r.fail("scope", f"'scope' is not a subscription, resource group or resource id: '{a.scope}'")


def _federated_credential(r: Reader, c: FederatedCredential) -> None:
    from msi_cli.core import federation

    r.follows("name", federation.validate, c)


def _issuer(r: Reader, i: Issuer) -> None:
    from msi_cli.core import issuers

    r.follows("name", issuers.validate_name, i.name)
    if i.kind not in issuers.KINDS:
        raise r.fail("kind", f"'kind' must be one of {', '.join(issuers.KINDS)}, not '{i.kind}'")


AFTER: dict[type, Callable[[Reader, Any], None]] = {
    SigningKey: lambda r, k: r.ordered("created", "signs_until", "published_until"),
    KeyCredential: lambda r, c: r.ordered("start", "end"),
    ResourceGroup: _resource_group,
    Resource: _resource,
    Identity: _identity,
    RoleAssignment: _role_assignment,
    FederatedCredential: _federated_credential,
    Issuer: _issuer,
}


# ---- the plan each class's records follow, derived once from its dataclass ----------------------

class Plan:
    """One model class's fields: (name, record key, element class of a nested list or None)."""

    __slots__ = ("cls", "fields", "flags", "keys", "lists", "reads")

    def __init__(self, cls: type) -> None:
        hints = _hints(cls)
        renamed = RENAMED.get(cls, {})
        checks = CHECKS.get(cls, {})
        self.cls = cls
        self.fields: list[tuple[str, str, type | None]] = []
        self.lists: list[tuple[int, type | None]] = []  # list fields: (index, nested class or None)
        self.flags = frozenset(name for name in fields(cls) if checks.get(name) is _flag)  # written only when true
        reads: list[tuple[str, str, Read]] = []
        for name in fields(cls):
            key = renamed.get(name, name)
            element = _element(hints[name])
            nested = element if element is not None and is_record(element) else None
            self.fields.append((name, key, nested))
            if element is not None:
                self.lists.append((len(self.fields) - 1, nested))
            read = checks.get(name) or _default_read(hints[name], nested)
            if FIRST.get(cls) == name:
                reads.insert(0, (name, key, read))
            else:
                reads.append((name, key, read))
        self.reads = reads
        self.keys = frozenset(key for _, key, _ in reads)  # all a record may hold: a key no field reads is refused


def _hints(cls: type) -> dict[str, Any]:
    """The class's field types: its annotations as they are (the model's are evaluated when the
    class is made), else what typing makes of them (as strings, they need evaluating)."""
    own: dict[str, Any] = dict(cls.__dict__.get("__annotations__", {}))
    if own and not any(isinstance(v, str) for v in own.values()):
        return own
    return typing.get_type_hints(cls)


def _element(hint: Any) -> type | None:
    """The element type of a `list[X]` field, else None."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is list else None


def _default_read(hint: Any, nested: type | None) -> Read:
    if nested is not None:
        return lambda r, key: [read_record(nested, t) for t in r.tables(key)]
    if typing.get_origin(hint) is list:
        return Reader.strings
    return Reader.string


@functools.cache
def plan(cls: type) -> Plan:
    return Plan(cls)


def to_record(obj: Any) -> Doc:
    """The record of a model object (nested objects as tables; None, and a flag that is not true,
    left out)."""
    rec: Doc = {}
    cls: type = obj.__class__
    p = plan(cls)
    for name, key, nested in p.fields:
        value = getattr(obj, name)
        if value is None or (value is not True and name in p.flags):  # a flag is read back only as true or absent
            continue
        if isinstance(value, list):
            value = [to_record(v) for v in value] if nested is not None else list(value)
        rec[key] = value
    return rec


def read_record(cls: type, r: Reader) -> Any:
    """The model object a record describes, each value checked (see the module's docstring)."""
    p = plan(cls)
    values = {name: read(r, key) for name, key, read in p.reads}
    for key in r.rec:
        if key not in p.keys:  # a key no field reads would be dropped, unsaid, by the next save
            raise r.fail(key, f"unknown key '{key}' in a {cls.__name__} record")
    obj = cls(**values)
    after = AFTER.get(cls)
    if after is not None:
        after(r, obj)
    return obj


def state_key(obj: Record) -> str:
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


@functools.cache
def collections() -> dict[str, type]:
    """The state's collections in file order, each with the model class of its objects."""
    hints = _hints(State)
    return {name: typing.get_args(hints[name])[1] for name in fields(State) if typing.get_origin(hints[name]) is dict}


def check_record(coll: str, rec: object, index: int) -> Record:
    """Field checks for one record; returns the model object it describes."""
    obj: Record = read_record(collections()[coll], Reader(rec, (coll, index)))
    return obj

