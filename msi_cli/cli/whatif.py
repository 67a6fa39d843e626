"""`--what-if` for msi migrate and msi move-subscription: the move rehearsed on a copy of the
state (msi_cli.core.estate.whatif), printed as a report; nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def rehearse(sf: Any, operation: str, move: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Read the state (no lock, no save), run `move` on a copy of it, report."""
    from msi_cli.core.timefmt import real_now
    from msi_cli.core.context import Ctx
    from msi_cli.core.estate import whatif
    from msi_cli.store.keyring import FileKeyRing, ScratchKeyRing

    state = sf.read()
    ctx = Ctx(state, real_now() + state.clock_offset, ScratchKeyRing(FileKeyRing(sf.keys_dir)))
    return whatif.rehearse(ctx, operation, move)


def report_text(data: dict[str, Any], **options: Any) -> str:
    """The rehearsal for people: what breaks, then the fix, one command a line."""
    if not data.get("whatIf"):
        import json

        return json.dumps(data, indent=2) + "\n"
    out = [f"What if: {data['operation']} (nothing was changed)"]

    def section(title: str, items: list[Any], line: Callable[[Any], str]) -> None:
        out.extend(["", f"{title}: {len(items)}" + ("" if items else " (none)")])
        out.extend("  " + line(item) for item in items)

    section("Role assignments deleted", data["deletedRoleAssignments"],
            lambda a: f"{a['roleDefinitionName']} for {a['principalId']} ({a['principalName'] or 'no name'}) at {a['scope']}")
    section("Role assignments orphaned (their scope moves away)", data["orphanedRoleAssignments"],
            lambda a: f"{a['roleDefinitionName']} for {a['principalId']} at {a['scope']}")
    section("Identities that stop getting tokens", data["brokenIdentities"],
            lambda b: f"{b['kind']} {b['name']} ({b['principalId']}), used by {', '.join(b['usedBy']) or 'no resource'}: {b['reason']}")
    section("User-assigned identities to re-create", data["userAssignedIdentitiesToRecreate"],
            lambda i: f"{i['id']}, used by {', '.join(i['usedBy']) or 'no resource'}")
    section("Federated credentials that break", data["brokenFederatedCredentials"],
            lambda c: f"{c['identity']}/{c['name']}: {c['issuer']} {c['subject']}")
    section("Fix, in order", data["fixCommands"], lambda c: c)
    from msi_cli.cli.render import text_lines

    return text_lines(out)
