"""Which ARM operation a request path names. Paths are compared without regard to case (az
writes `resourcegroups`), percent-decoded, with a trailing slash ignored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

AUTHZ = "/providers/microsoft.authorization/"
SYSTEM_DEFAULT = "/providers/microsoft.managedidentity/identities/default"
PREFIXES = ("/subscriptions", "/tenants", "/providers")


_SLASHES = re.compile(r"//+")


UAI_LOWER = "microsoft.managedidentity/userassignedidentities"


def _clean(path: str) -> str:
    """Repeated slashes count as one: az joins `https://host/` and `/metadata/...` into `//`."""
    return _SLASHES.sub("/", path)


def is_arm(path: str) -> bool:
    """ARM's paths; `/metadata/endpoints` only (other `/metadata/...` paths are IMDS's)."""
    low = _clean(path).lower().rstrip("/")
    return low == "/metadata/endpoints" or any(low == p or low.startswith(p + "/") for p in PREFIXES)


@dataclass(frozen=True, slots=True)
class Route:
    kind: str
    path: str  # the decoded path, without a trailing slash, as the client wrote it
    subscription: str | None = None
    group: str | None = None
    namespace: str | None = None  # e.g. Microsoft.Compute
    type_name: str | None = None  # e.g. virtualMachines
    name: str | None = None
    scope: str = ""  # for authorization and the system-assigned identity: the scope before /providers
    params: dict[str, str] = field(default_factory=dict)

    @property
    def arm_type(self) -> str:
        return f"{self.namespace}/{self.type_name}"


def parse(raw_path: str) -> Route | None:
    path = _clean(unquote(raw_path)).rstrip("/") or "/"
    low = path.lower()
    parts = path.split("/")[1:]
    lows = [p.lower() for p in parts]
    if low == "/metadata/endpoints":
        return Route("metadata", path)
    if low == "/tenants":
        return Route("tenants", path)
    if low == "/subscriptions":
        return Route("subscriptions", path)
    at = low.rfind(AUTHZ)
    if at >= 0:
        scope = path[:at]
        rest = parts[len(scope.split("/")) + 1:]  # after providers/Microsoft.Authorization
        rest_low = [p.lower() for p in rest]
        if len(rest) in (1, 2) and rest_low[0] in ("roledefinitions", "roleassignments"):
            kind = "role-definition" if rest_low[0] == "roledefinitions" else "role-assignment"
            if len(rest) == 1:
                kind += "s"
            return Route(kind, path, subscription=_sub(scope), scope=scope, name=rest[1] if len(rest) == 2 else None)
        return None
    if low.endswith(SYSTEM_DEFAULT) and low.startswith("/subscriptions/"):
        scope = path[: -len(SYSTEM_DEFAULT)]
        return Route("system-identity", path, subscription=_sub(scope), scope=scope)
    if not lows or lows[0] != "subscriptions" or len(parts) < 2:
        return None
    sub = parts[1]
    if len(parts) == 2:
        return Route("subscription", path, subscription=sub)
    if len(parts) == 3 and lows[2] == "resources":
        return Route("generic-resources", path, subscription=sub)
    if lows[2] == "resourcegroups":
        if len(parts) == 3:
            return Route("groups", path, subscription=sub)
        group = parts[3]
        if len(parts) == 4:
            return Route("group", path, subscription=sub, group=group)
        if len(parts) == 5 and lows[4] == "resources":
            return Route("generic-resources", path, subscription=sub, group=group)
        if lows[4] != "providers":
            return None
        if len(parts) in (9, 10) and lows[8] == "federatedidentitycredentials" and f"{lows[5]}/{lows[6]}" == UAI_LOWER:
            return Route("federated-credentials" if len(parts) == 9 else "federated-credential", path, subscription=sub,
                         group=group, namespace=parts[5], type_name=parts[6], name=parts[7],
                         params={"credential": parts[9]} if len(parts) == 10 else {})
        if len(parts) not in (7, 8):
            return None
        kind = "resources" if len(parts) == 7 else "resource"
        return Route(kind, path, subscription=sub, group=group, namespace=parts[5], type_name=parts[6],
                     name=parts[7] if len(parts) == 8 else None)
    if lows[2] == "providers" and len(parts) == 5:
        return Route("resources", path, subscription=sub, namespace=parts[3], type_name=parts[4])
    return None


def _sub(scope: str) -> str | None:
    parts = scope.split("/")
    return parts[2] if len(parts) > 2 and parts[1].lower() == "subscriptions" else None
