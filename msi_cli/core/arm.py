"""Azure Resource Manager vocabulary: resource types, resource ids and Azure's naming rules."""

from __future__ import annotations

import functools
import os
import re

from msi_cli.errors import InvalidArgument, InvalidName, printable
from msi_cli.core.datatype import record


@record(frozen=True)
class ResourceType:
    key: str  # the short name used on the command line
    arm_type: str  # Microsoft.Namespace/type
    kind: str | None  # ARM `kind` where Azure sets one (web and function apps)
    label: str  # what Azure's docs call it, for messages
    supports_identity: bool
    host: str | None  # which token endpoint its code uses: "imds" or "appservice" (App Service protocol)
    name_rule: str  # regex for the name
    name_help: str  # Azure's rule, as a sentence


_VM_RULE = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?"
_VM_HELP = "1-64 characters: letters, digits, '_', '.', '-'; starting with a letter, digit or '_' and ending with a letter, digit or '_'"

class _ResourceTypes(dict[str, ResourceType]):
    """The modelled types by their short key. Any other single-level ARM type, written as
    `Namespace/type` (what `msi import az` found and msi does not model), is a plain resource: kept
    with its name and id, with no identity and no token endpoint. Iterating gives the modelled
    types only."""

    def __missing__(self, key: str) -> ResourceType:
        if not is_plain_type(key):
            raise KeyError(key)
        return _plain_type(key)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (isinstance(key, str) and is_plain_type(key))


RESOURCE_TYPES: dict[str, ResourceType] = _ResourceTypes({
    t.key: t
    for t in (
        ResourceType("vm", "Microsoft.Compute/virtualMachines", None, "virtual machine", True, "imds", _VM_RULE, _VM_HELP),
        ResourceType("vmss", "Microsoft.Compute/virtualMachineScaleSets", None, "virtual machine scale set", True, "imds", _VM_RULE, _VM_HELP),
        ResourceType(
            "webapp", "Microsoft.Web/sites", "app", "App Service app", True, "appservice",
            r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])",
            "2-60 characters: letters, digits and '-', not starting or ending with '-'",
        ),
        ResourceType(
            "functionapp", "Microsoft.Web/sites", "functionapp", "Function app", True, "appservice",
            r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])",
            "2-60 characters: letters, digits and '-', not starting or ending with '-'",
        ),
        ResourceType(
            "containerapp", "Microsoft.App/containerApps", None, "Container App", True, "appservice",
            r"[a-z](?!.*--)(?:[a-z0-9-]{0,30}[a-z0-9])",
            "2-32 characters: lower-case letters, digits and '-', starting with a letter, ending with a letter or digit, no '--'",
        ),
        ResourceType(
            "keyvault", "Microsoft.KeyVault/vaults", None, "key vault", False, None,
            r"[A-Za-z](?!.*--)[A-Za-z0-9-]{1,22}[A-Za-z0-9]",
            "3-24 characters: letters, digits and '-', starting with a letter, ending with a letter or digit, no '--'",
        ),
        ResourceType(
            "storage", "Microsoft.Storage/storageAccounts", None, "storage account", True, None,
            r"[a-z0-9]{3,24}",
            "3-24 characters: lower-case letters and digits only",
        ),
    )
})

IDENTITY_ARM_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
# The rules are compiled when first used, and kept: a command that validates no name, as every
# read does, compiles none of them.
rx = functools.cache(re.compile)
_IDENTITY_RULE = r"[A-Za-z0-9][A-Za-z0-9_-]{2,127}"
_IDENTITY_HELP = "3-128 characters: letters, digits, '-' and '_', starting with a letter or digit"
_RG_RULE = r"[-\w._()]{0,89}[-\w_()]"
_LOCATION_RULE = r"[a-z][a-z0-9]{1,39}"
_GUID_RULE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PLAIN_TYPE_RULE = r"[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)+/[A-Za-z][A-Za-z0-9_-]*"
_PLAIN_NAME_RULE = r"[^/\\?#\x00-\x1f\x7f]{1,260}"
_MODELLED_ARM_TYPES = {t.arm_type.lower() for t in RESOURCE_TYPES.values()} | {IDENTITY_ARM_TYPE.lower()}


def is_plain_type(value: str) -> bool:
    """An ARM type msi does not model (`Microsoft.Sql/servers`): kept as a plain resource."""
    return rx(_PLAIN_TYPE_RULE).fullmatch(value) is not None and value.lower() not in _MODELLED_ARM_TYPES


@functools.lru_cache(maxsize=256)
def _plain_type(arm_type: str) -> ResourceType:
    return ResourceType(arm_type, arm_type, None, f"{arm_type} resource", False, None, _PLAIN_NAME_RULE,
                        "1-260 characters, no '/', '\\', '?' or '#'")


def resource_type(key: str) -> ResourceType:
    try:
        return RESOURCE_TYPES[key]
    except KeyError:
        raise InvalidArgument(
            f"unknown resource type '{key}'", hint="use one of: " + ", ".join(RESOURCE_TYPES)
        ) from None


def new_guid() -> str:
    """A random (version 4) GUID, as uuid.uuid4() makes it, without the uuid module's cost."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_HEX = frozenset("0123456789abcdefABCDEF")


def is_guid(value: str) -> bool:
    """8-4-4-4-12 hex digits (what _GUID_RULE matches, without compiling it: most commands check one)."""
    return (len(value) == 36 and value[8] == value[13] == value[18] == value[23] == "-"
            and _HEX.issuperset(value[:8] + value[9:13] + value[14:18] + value[19:23] + value[24:]))


def validate_resource_name(type_key: str, name: str) -> None:
    rtype = resource_type(type_key)
    if not rx(rtype.name_rule).fullmatch(name):
        raise InvalidName(f"invalid {rtype.label} name '{printable(name)}': {rtype.name_help}")


def validate_identity_name(name: str) -> None:
    if not rx(_IDENTITY_RULE).fullmatch(name):
        raise InvalidName(f"invalid user-assigned identity name '{printable(name)}': {_IDENTITY_HELP}")


def validate_resource_group(name: str) -> None:
    if not rx(_RG_RULE).fullmatch(name):
        raise InvalidName(
            f"invalid resource group name '{printable(name)}': 1-90 characters: letters, digits, '_', '-', "
            "'.', '(' and ')', not ending with '.'"
        )


def validate_location(name: str) -> None:
    if not rx(_LOCATION_RULE).fullmatch(name):
        raise InvalidName(f"invalid location '{printable(name)}': use a region name such as eastus or westeurope")


def location_name(given: str) -> str:
    """A location as ARM keeps it: case and spaces do not matter ("West Europe", "WestEurope" and
    "westeurope" are one region, written "westeurope"; Azure/azure-sdk-for-net#1223). Not checked:
    see `location`."""
    return given.replace(" ", "").lower()


def location(given: str) -> str:
    """`location_name`, refused (InvalidName) unless it is shaped like a region's name."""
    name = location_name(given)
    if not rx(_LOCATION_RULE).fullmatch(name):
        raise InvalidName(f"invalid location '{printable(given)}': use a region name such as eastus or westeurope")
    return name


# Characters no name may hold: controls (C0, DEL, C1), lone surrogates (bytes that were not UTF-8
# on the command line or in the state file) and the invisible bidi/line-separator characters.
_UNPRINTABLE = "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"


def unprintable(value: str) -> bool:
    """Whether `value` holds a character of _UNPRINTABLE. ASCII text (nearly every value) is
    answered without the pattern: among ASCII characters it names exactly those str.isprintable
    refuses (C0 controls and DEL)."""
    if value.isascii():
        return not value.isprintable()
    return rx(_UNPRINTABLE).search(value) is not None


def validate_display_name(what: str, name: str, limit: int) -> None:
    if not name.strip() or len(name) > limit or unprintable(name):
        raise InvalidName(f"invalid {what} name '{printable(name)}': 1-{limit} printable characters (UTF-8 text, no control characters)")


def resource_id(subscription_id: str, resource_group: str, arm_type: str, name: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{arm_type}/{name}"


def subscription_scope(subscription_id: str) -> str:
    return f"/subscriptions/{subscription_id}"


def resource_group_scope(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"


@record(frozen=True)
class ParsedId:
    """The parts of an ARM id (a subscription, resource group or resource scope), as written."""

    subscription_id: str
    resource_group: str | None
    arm_type: str | None
    name: str | None

    @property
    def subscription(self) -> str:
        """The subscription id, lower-case (as the state keys it); "" if not an id."""
        return self.subscription_id.lower()


_ID_RULE = (
    r"(?i)/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+)"
    r"(?:/providers/(?P<ns>[^/]+)/(?P<type>[^/]+)/(?P<name>[^/]+))?)?/?"
)


def parse_id(value: str) -> ParsedId | None:
    """Split an ARM id (subscription, resource group or resource scope); None if it is not one."""
    m = rx(_ID_RULE).fullmatch(value)
    if not m:
        return None
    arm_type = f"{m['ns']}/{m['type']}" if m["ns"] else None
    return ParsedId(m["sub"], m["rg"], arm_type, m["name"])


NOT_AN_ID = ParsedId("", None, None, None)


def parts(value: str) -> ParsedId:
    """`parse_id`, with empty parts (never None) for a value that is not an ARM id."""
    return parse_id(value) or NOT_AN_ID


def covers(outer: str, inner: str) -> bool:
    """True when scope `outer` is `inner` or a parent of it (case-insensitive, as ARM ids are): an
    assignment at `outer` applies at `inner`; a move of resource `outer` orphans what is at `inner`."""
    o, i = outer.lower().rstrip("/"), inner.lower().rstrip("/")
    return i == o or i.startswith(o + "/")


def looks_like_id(value: str) -> bool:
    return value.startswith("/")
