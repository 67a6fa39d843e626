"""Where each command appears in `msi --help`: panels in the order a new user needs them, and the
commands of each panel in that order too. A command not named here is listed under "Utilities".
To place a new command, add its name to one line below."""

from __future__ import annotations

PANELS: dict[str, list[str]] = {
    "Lifecycle": [
        "create-resource", "create-identity", "assign", "unassign", "show", "list", "delete",
        "create-tenant", "create-subscription",
    ],
    "Access": ["grant", "revoke", "check-access"],
    "Tokens": ["token", "verify", "jwks", "tenant"],
    "Moves": ["migrate", "move-subscription"],
    "Endpoint": ["serve", "env", "federation", "issuer", "oidc-token", "tls"],
    "Utilities": ["demo", "log", "clock", "apply", "export", "import", "state", "completion", "help"],
}
DEFAULT_PANEL = "Utilities"
ORDER: list[str] = [name for names in PANELS.values() for name in names]


def panel_of(name: str) -> str:
    return next((panel for panel, names in PANELS.items() if name in names), DEFAULT_PANEL)


def ordered(names: list[str]) -> list[str]:
    """`names` in help order: by panel, then as listed; unknown ones last, as registered."""
    rank = {name: n for n, name in enumerate(ORDER)}
    panel_rank = {panel: n for n, panel in enumerate(PANELS)}
    return sorted(names, key=lambda name: (panel_rank[panel_of(name)], rank.get(name, len(rank))))
