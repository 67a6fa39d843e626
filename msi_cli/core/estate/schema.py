"""The estate file: what it may hold, read from TOML or JSON into specs that know their line.

Every entry is checked for its shape here (types, names, unknown keys), so a file is refused before
anything is planned; references between entries (a subscription by name, an identity by name) are
resolved by the planner, which reports them at the line of the entry that holds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from msi_cli.core import arm, federation
from msi_cli.core.estate import lines
from msi_cli.errors import InvalidArgument, MsiError, deep_input

Doc = dict[str, Any]
Path_ = lines.Path_  # where a value sits: ("resources", 3, "type")

FORMAT = "msi-estate"
SECTIONS = ("tenants", "subscriptions", "resource_groups", "identities", "resources", "role_assignments")
DEFAULT_GROUP = "default"
DEFAULT_LOCATION = "eastus"


class EstateError(InvalidArgument):
    """A file that is not a valid estate: names the file and the line of the entry."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}; nothing was changed")
        self.where = where
        self.reason = message


@dataclass(slots=True)
class TenantSpec:
    name: str
    id: str | None
    path: Path_


@dataclass(slots=True)
class SubscriptionSpec:
    name: str
    tenant: str | None
    id: str | None
    path: Path_


@dataclass(slots=True)
class GroupSpec:
    name: str
    subscription: str | None
    location: str
    path: Path_
    located: bool = True  # the file gives `location` (else the default, for a new group only)
    location_guessed: bool = False  # `location_guessed = true`: msi import az's guess (see IdentitySpec), as export writes it


@dataclass(slots=True)
class CredentialSpec:
    name: str
    issuer: str
    subject: str
    audiences: list[str]
    path: Path_


@dataclass(slots=True)
class IdentitySpec:
    name: str
    subscription: str | None
    resource_group: str
    location: str
    principal_id: str | None
    client_id: str | None
    credentials: list[CredentialSpec]
    path: Path_
    # `location_guessed = true` (export writes it for an identity the state marks so), or set by
    # `msi import az` when all it knows of the region is a guess (the region of a resource whose
    # identity block names the identity). A guess never refuses or settles an identity the state
    # holds elsewhere, and an identity made from one takes the region an entry of its own gives later.
    location_guessed: bool = False
    located: bool = True  # the file gives `location` (else the default, for a new identity only)


@dataclass(slots=True)
class ResourceSpec:
    name: str
    type: str
    subscription: str | None
    resource_group: str
    location: str
    system_assigned: bool
    user_assigned: list[str]
    principal_id: str | None  # of the system-assigned identity, when it is created
    client_id: str | None
    path: Path_
    located: bool = True  # the file gives `location` (else the default, for a new resource only)


@dataclass(slots=True)
class AssignmentSpec:
    role: str
    scope: str
    identity: str | None  # a user-assigned identity reference
    resource: str | None  # a resource reference: its system-assigned identity
    id: str | None
    path: Path_


@dataclass(slots=True)
class Estate:
    source: str  # the file's name, for messages
    text: str
    kind: str  # "toml" or "json"
    tenants: list[TenantSpec] = field(default_factory=list)
    subscriptions: list[SubscriptionSpec] = field(default_factory=list)
    resource_groups: list[GroupSpec] = field(default_factory=list)
    identities: list[IdentitySpec] = field(default_factory=list)
    resources: list[ResourceSpec] = field(default_factory=list)
    role_assignments: list[AssignmentSpec] = field(default_factory=list)
    objects: dict[Path_, int] = field(default_factory=dict)  # JSON: where each object starts (its '{'), by path
    # Not in the file: `msi import az` sets it, as a group it does not declare (one without an `az
    # group list` entry) is made where its first member is, a guess its own entry settles later.
    groups_guessed: bool = False

    def where(self, path: Path_) -> str:
        line = locate(self, path)
        return f"{self.source}, line {line}" if line else self.source

    def fail(self, path: Path_, message: str) -> EstateError:
        return EstateError(self.where(path), message)


# ---- reading ------------------------------------------------------------------------------------------


def parse(text: str, source: str, kind: str | None = None) -> Estate:
    """The estate in `text` (TOML, or JSON when `kind` says so or the text starts with `{`)."""
    if kind is None:
        kind = "json" if text.lstrip().startswith("{") or source.lower().endswith(".json") else "toml"
    estate = Estate(source, text, kind)
    if kind == "json":
        doc = _json(text, source, estate.objects)
    else:
        doc = _toml(text, source)
    _read(estate, doc)
    return estate


def _toml(text: str, source: str) -> Doc:
    import tomllib

    try:
        with deep_input():
            return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EstateError(source, f"not valid TOML: {exc}") from None
    except RecursionError:
        raise EstateError(source, "not valid TOML: nested too deeply") from None
    except ValueError:  # tomllib's int() of an integer longer than Python reads
        found = lines.toml_long_integer(text)
        if found is None:
            raise EstateError(source, "not valid TOML: an integer too long to read") from None
        raise EstateError(f"{source}, line {found[0]}", lines.too_long(found[1])) from None


def _json(text: str, source: str, found: dict[Path_, int]) -> Doc:
    try:
        with deep_input():
            doc, end = lines.decode_json(text, found)
    except json.JSONDecodeError as exc:
        raise EstateError(f"{source}, line {exc.lineno}", f"not valid JSON: {exc.msg}") from None
    except lines.Refused as exc:
        raise EstateError(f"{source}, line {exc.line}", exc.message) from None
    except RecursionError:
        raise EstateError(source, "not valid JSON: nested too deeply") from None
    if text[end:].strip():
        raise EstateError(f"{source}, line {text.count(chr(10), 0, end) + 1}", "not valid JSON: extra data after the document")
    if not isinstance(doc, dict):
        raise EstateError(source, "the document must be an object")
    return doc


class _Entry:
    """Typed access to one entry, failing with the file and line of the entry."""

    def __init__(self, estate: Estate, value: object, path: Path_, allowed: tuple[str, ...]) -> None:
        if not isinstance(value, dict):
            raise estate.fail(path, f"'{path[0]}' entries must be tables")
        self.estate, self.rec, self.path = estate, value, path
        unknown = [k for k in value if k not in allowed]
        if unknown:
            raise self.fail(unknown[0], f"unknown key '{unknown[0]}' (allowed: {', '.join(allowed)})")

    def fail(self, key: str | None, message: str) -> EstateError:
        return self.estate.fail(self.path + ((key,) if key else ()), message)

    def string(self, key: str, default: str | None = None) -> str:
        value = self.rec.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"'{key}' is missing" if key not in self.rec else f"'{key}' must be a non-empty string")
        return value

    def optional(self, key: str) -> str | None:
        return self.string(key) if key in self.rec else None

    def guid(self, key: str) -> str | None:
        value = self.optional(key)
        if value is not None and not arm.is_guid(value):
            raise self.fail(key, f"'{key}' must be a GUID, not '{value}'")
        return value.lower() if value is not None else None

    def flag(self, key: str) -> bool:
        value = self.rec.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, f"'{key}' must be true or false")
        return value

    def strings(self, key: str) -> list[str]:
        value = self.rec.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(key, f"'{key}' must be a list of non-empty strings")
        return list(value)

    def rule(self, key: str, check: Any, *args: object) -> None:
        try:
            check(*args)
        except MsiError as exc:
            raise self.fail(key, exc.message) from None

    def entries(self, key: str, allowed: tuple[str, ...]) -> list[_Entry]:
        value = self.rec.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, f"'{key}' must be a list of tables")
        return [_Entry(self.estate, v, (*self.path, key, n), allowed) for n, v in enumerate(value)]


TENANT_KEYS = ("name", "id")
SUBSCRIPTION_KEYS = ("name", "tenant", "id")
GROUP_KEYS = ("name", "subscription", "location", "location_guessed")
IDENTITY_KEYS = ("name", "subscription", "resource_group", "location", "location_guessed", "principal_id", "client_id",
                 "federated_credentials")
CREDENTIAL_KEYS = ("name", "issuer", "subject", "audiences")
RESOURCE_KEYS = ("name", "type", "subscription", "resource_group", "location", "system_assigned", "user_assigned",
                 "principal_id", "client_id")
ASSIGNMENT_KEYS = ("role", "scope", "identity", "resource", "id")
TOP_KEYS = ("format", *SECTIONS)
JSON_TOP_KEYS = ("$schema",)  # what editors validate a JSON file against: allowed at its top, and ignored


def _section(estate: Estate, doc: Doc, name: str, allowed: tuple[str, ...]) -> list[_Entry]:
    value = doc.get(name, [])
    if not isinstance(value, list):
        raise estate.fail((name,), f"'{name}' must be a list of tables ([[{name}]])")
    return [_Entry(estate, v, (name, n), allowed) for n, v in enumerate(value)]


def _guessed(e: _Entry) -> bool:
    """`location_guessed`: true, or absent (as the state file keeps the mark)."""
    if "location_guessed" in e.rec and e.rec["location_guessed"] is not True:
        raise e.fail("location_guessed", "'location_guessed' must be true when present")
    return "location_guessed" in e.rec


def _location(e: _Entry) -> str:
    given = e.string("location", DEFAULT_LOCATION)
    e.rule("location", arm.location, given)
    return arm.location(given)


def _read(estate: Estate, doc: Doc) -> None:
    allowed = TOP_KEYS + JSON_TOP_KEYS if estate.kind == "json" else TOP_KEYS
    unknown = [k for k in doc if k not in allowed]
    if unknown:
        raise estate.fail((unknown[0],), f"unknown section '{unknown[0]}' (an estate holds: {', '.join(SECTIONS)})")
    if not isinstance(doc.get("$schema", ""), str):
        raise estate.fail(("$schema",), "'$schema' must be a string: the URL of the JSON Schema an editor validates the file against")
    fmt = doc.get("format", FORMAT)
    if fmt != FORMAT:
        raise estate.fail(("format",), f"'format' must be '{FORMAT}'")
    for e in _section(estate, doc, "tenants", TENANT_KEYS):
        name = e.string("name")
        e.rule("name", arm.validate_display_name, "tenant", name, 256)
        estate.tenants.append(TenantSpec(name, e.guid("id"), e.path))
    for e in _section(estate, doc, "subscriptions", SUBSCRIPTION_KEYS):
        name = e.string("name")
        e.rule("name", arm.validate_display_name, "subscription", name, 64)
        estate.subscriptions.append(SubscriptionSpec(name, e.optional("tenant"), e.guid("id"), e.path))
    for e in _section(estate, doc, "resource_groups", GROUP_KEYS):
        name = e.string("name")
        e.rule("name", arm.validate_resource_group, name)
        estate.resource_groups.append(GroupSpec(name, e.optional("subscription"), _location(e), e.path, "location" in e.rec,
                                                _guessed(e)))
    for e in _section(estate, doc, "identities", IDENTITY_KEYS):
        name = e.string("name")
        e.rule("name", arm.validate_identity_name, name)
        group = e.string("resource_group", DEFAULT_GROUP)
        e.rule("resource_group", arm.validate_resource_group, group)
        creds = []
        for c in e.entries("federated_credentials", CREDENTIAL_KEYS):
            spec = CredentialSpec(c.string("name"), c.string("issuer"), c.string("subject"),
                                  c.strings("audiences") if "audiences" in c.rec else [federation.DEFAULT_AUDIENCE], c.path)
            c.rule("name", federation.validate, _as_credential(spec))
            creds.append(spec)
        _pair(e)
        estate.identities.append(IdentitySpec(name, e.optional("subscription"), group, _location(e), e.guid("principal_id"),
                                              e.guid("client_id"), creds, e.path, located="location" in e.rec,
                                              location_guessed=_guessed(e)))
    for e in _section(estate, doc, "resources", RESOURCE_KEYS):
        name, type_key = e.string("name"), e.string("type")
        if type_key not in arm.RESOURCE_TYPES:
            raise e.fail("type", f"unknown resource type '{type_key}' (use one of: {', '.join(arm.RESOURCE_TYPES)}, "
                                 "or an ARM type such as Microsoft.Sql/servers for a resource without identities)")
        e.rule("name", arm.validate_resource_name, type_key, name)
        group = e.string("resource_group", DEFAULT_GROUP)
        e.rule("resource_group", arm.validate_resource_group, group)
        system, users = e.flag("system_assigned"), e.strings("user_assigned")
        if (system or users) and not arm.RESOURCE_TYPES[type_key].supports_identity:
            raise e.fail("system_assigned" if system else "user_assigned",
                         f"resource type {arm.RESOURCE_TYPES[type_key].arm_type} does not support managed identities")
        _pair(e)
        if e.rec.get("principal_id") and not system:
            raise e.fail("principal_id", "'principal_id' is the system-assigned identity's: set system_assigned = true")
        estate.resources.append(ResourceSpec(name, type_key, e.optional("subscription"), group, _location(e), system, users,
                                             e.guid("principal_id"), e.guid("client_id"), e.path, "location" in e.rec))
    for e in _section(estate, doc, "role_assignments", ASSIGNMENT_KEYS):
        identity, resource = e.optional("identity"), e.optional("resource")
        if (identity is None) == (resource is None):
            raise e.fail(None, "a role assignment names its principal with exactly one of 'identity' (a user-assigned "
                               "identity) or 'resource' (that resource's system-assigned identity)")
        scope = e.string("scope")
        if arm.parse_id(scope) is None:
            raise e.fail("scope", f"invalid scope '{scope}' (use /subscriptions/NAME-OR-ID[/resourceGroups/RG[/providers/NS/TYPE/NAME]])")
        estate.role_assignments.append(AssignmentSpec(e.string("role"), scope, identity, resource, e.guid("id"), e.path))


def _pair(e: _Entry) -> None:
    if "client_id" in e.rec and "principal_id" not in e.rec:
        raise e.fail("client_id", "'client_id' comes with 'principal_id' (the ids an identity keeps when it is created)")


def _as_credential(spec: CredentialSpec) -> Any:
    from msi_cli.core.model import FederatedCredential

    return FederatedCredential("", spec.name, spec.issuer, spec.subject, spec.audiences, "")


def locate(estate: Estate, path: Path_) -> int | None:
    """The 1-based line of the entry (or its key) at `path`."""
    if estate.kind == "json":
        return lines.json_line(estate.text, estate.objects, path)
    return lines.toml_line(estate.text, path)
