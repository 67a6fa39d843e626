"""Options (and table columns) shared by many commands. Which state file a command line means is
in cli/statepath.py."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from msi_cli.cli.render import Col, Columns, Output

if TYPE_CHECKING:
    from msi_cli.store.statefile import StateFile

    # The annotation of a command's `sf` parameter (see msi_cli.cli.command): the StateFile it is given.
    StateArg = StateFile
else:
    # At run time command() evaluates a command's annotations, then drops `sf` before Typer sees
    # them: any name will do there, and the store is imported only when the command runs.
    StateArg = object


class ResourceKind(str, Enum):
    vm = "vm"
    vmss = "vmss"
    webapp = "webapp"
    functionapp = "functionapp"
    containerapp = "containerapp"
    keyvault = "keyvault"
    storage = "storage"


def _lazy_completer(name: str) -> Callable[[Any, list[str], str], Any]:
    """`autocompletion=` for Typer: msi_cli.cli.complete.<name>, imported only while completing."""

    def complete(ctx: Any, args: list[str], incomplete: str) -> Any:
        from msi_cli.cli import complete as completions

        return getattr(completions, name)(ctx, args, incomplete)

    complete.__name__ = complete.__qualname__ = name
    return complete


# Shell completion of dynamic values, for `typer.Argument/Option(..., autocompletion=...)`.
complete_targets = _lazy_completer("complete_targets")  # resources and user-assigned identities
complete_resources = _lazy_completer("complete_resources")
complete_identities = _lazy_completer("complete_identities")  # user-assigned identities
complete_tenants = _lazy_completer("complete_tenants")
complete_subscriptions = _lazy_completer("complete_subscriptions")
complete_groups = _lazy_completer("complete_groups")
complete_scopes = _lazy_completer("complete_scopes")
complete_roles = _lazy_completer("complete_roles")
complete_types = _lazy_completer("complete_types")
complete_audiences = _lazy_completer("complete_audiences")  # known resource URIs


def _check_query(ctx: typer.Context, value: Optional[str]) -> Optional[str]:
    """Compile --query while parsing, as az does, so a bad expression is a usage error before the
    command changes anything."""
    if value and not ctx.resilient_parsing:
        from msi_cli.cli.query import check_query

        check_query(value)
    return value


OutputOpt = Annotated[
    Output,
    typer.Option("--output", "-o", envvar="MSI_OUTPUT", help="Output format: table, json, jsonc (coloured JSON), yaml, tsv or none.", case_sensitive=False),
]
QueryOpt = Annotated[
    Optional[str],
    typer.Option(
        "--query", envvar="MSI_QUERY", metavar="JMESPATH", callback=_check_query,
        help="JMESPath query applied to the result before it is printed, as in az.",
    ),
]
GroupOpt = Annotated[
    Optional[str],
    typer.Option(
        "--resource-group", "-g", envvar="MSI_RESOURCE_GROUP", help="Resource group (default: 'default').", autocompletion=complete_groups
    ),
]
# Where `migrate` moves a resource to: not MSI_RESOURCE_GROUP, which scripts set to find things by
# (a move into it would be a surprise); an omitted -g keeps the resource's own group's name.
DestinationGroupOpt = Annotated[
    Optional[str],
    typer.Option(
        "--resource-group", "-g", envvar="MSI_DESTINATION_GROUP", metavar="RG",
        help="Destination resource group (default: a group of the resource's own group's name).", autocompletion=complete_groups,
    ),
]
# Looking an object up (show, list, delete, assign, token, env, ...): an omitted -g or
# --subscription searches them all (the contract; a bare name that matches several is refused).
FindGroupOpt = Annotated[
    Optional[str],
    typer.Option(
        "--resource-group", "-g", envvar="MSI_RESOURCE_GROUP", metavar="RG",
        help="Resource group to look in (default: every group).", autocompletion=complete_groups,
    ),
]
FindSubscriptionOpt = Annotated[
    Optional[str],
    typer.Option(
        "--subscription", envvar="MSI_SUBSCRIPTION", metavar="SUBSCRIPTION",
        help="Subscription (name or id) to look in (default: every subscription).", autocompletion=complete_subscriptions,
    ),
]
SubscriptionOpt = Annotated[
    Optional[str],
    typer.Option(
        "--subscription", envvar="MSI_SUBSCRIPTION", help="Subscription name or id (default: the default subscription).",
        autocompletion=complete_subscriptions,
    ),
]
LocationOpt = Annotated[Optional[str], typer.Option("--location", "-l", help="Azure region (default: eastus).")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
UserAssignedOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--user-assigned", help="A user-assigned identity, by name or resource id. Repeat for several.",
        autocompletion=complete_identities,
    ),
]
SystemAssignedOpt = Annotated[bool, typer.Option("--system-assigned", help="The resource's system-assigned identity.")]
DefaultTenantOpt = Annotated[
    Optional[str],
    typer.Option("--tenant", help="Tenant name or id (default: the default subscription's tenant).", autocompletion=complete_tenants),
]

# az's "Resource Id arguments": a target by name (positional or -n/--name) or by full id (--ids).
NameOpt = Annotated[
    Optional[str], typer.Option("--name", "-n", metavar="NAME", help="The target's name (instead of the positional NAME).", autocompletion=complete_targets),
]
IdsOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--ids", metavar="ID",
        help="One or more full resource ids (space-delimited), instead of a name; -g and --subscription are not needed.",
        autocompletion=complete_targets,
    ),
]


def targets(
    positional: Optional[str], name: Optional[str], ids: Optional[list[str]], *, many: bool = True, with_ids: bool = True
) -> list[str]:
    """What the user named: the positional NAME, -n/--name, or the --ids (a value holding several
    ids, `--ids "$(msi list ... -o tsv)"`, is split on whitespace). Exactly one way, as in az."""
    from msi_cli.errors import InvalidArgument

    given = [ref for ref in (positional, name) if ref is not None]
    split = [part for value in ids or () for part in value.split()]
    if ids is not None and given:
        raise InvalidArgument("give either --ids or a name (positional or -n/--name), not both")
    if len(given) > 1:
        raise InvalidArgument("give the name once: as the positional NAME or with -n/--name")
    if ids is None:
        if not given:
            raise InvalidArgument("missing a name", hint="give NAME, -n NAME or --ids ID" if with_ids else "give NAME or -n NAME")
        return given
    if not split:
        raise InvalidArgument("--ids needs at least one full resource id")
    bad = next((ref for ref in split if not ref.startswith("/")), None)
    if bad is not None:
        raise InvalidArgument(f"--ids takes full resource ids; '{bad}' is not one", hint=f"use -n {bad} for a name")
    if len(split) > 1 and not many:
        raise InvalidArgument("this command takes one target: give one id to --ids")
    return split


def standard_input() -> str:
    """All of standard input, for an argument given as '-': one usage error when the shell closed
    it (`0<&-`) or it cannot be read (opened for writing only), never a traceback."""
    import sys

    from msi_cli.errors import InvalidArgument

    if sys.stdin is None:
        raise InvalidArgument("'-' means standard input, which is closed")
    try:
        return sys.stdin.read()
    except OSError as exc:
        raise InvalidArgument(f"'-' means standard input, which cannot be read: {exc.strerror or exc}") from None


def spread_ids(args: list[str]) -> list[str]:
    """az's `--ids A B C` (space-delimited) as click reads repeated options: `--ids A --ids B
    --ids C`. Only words that start with '/' (a full id) are taken after `--ids`."""
    if "--ids" not in args:
        return args
    out: list[str] = []
    taking = False
    for arg in args:
        if arg == "--ids":
            taking = False
            out.append(arg)
            continue
        if taking and arg.startswith("/"):
            out += ["--ids", arg]
            continue
        taking = bool(out) and out[-1] == "--ids"
        out.append(arg)
        if arg == "--":
            taking = False
    return out


# Table columns shared by command modules (importing a command module registers its commands).
PRINCIPAL_CELL = "_principal"  # a table-only field: the principal's display name, never in the JSON


def principal_cell(item: dict[str, Any]) -> str:
    """Who a role assignment is for, in a terminal: the principal's display name (when the table
    knows it), else az's principalName, and a marker once the principal is gone."""
    name = item.get(PRINCIPAL_CELL) or item.get("principalName")
    return name if name else "(orphaned)"


def short_scope(item: dict[str, Any]) -> str:
    """A scope as a terminal shows it: the name at its end (`kv1`, `rg app-rg`); -o json has it whole."""
    from msi_cli.cli.terminal import short_id

    return short_id(str(item.get("scope") or ""))


ASSIGNMENT_COLUMNS: Columns = [
    Col("Principal id", "principalId", rank=2),
    Col("Principal name", "principalName", tty=principal_cell),
    Col("Principal type", "principalType", rank=3),
    Col("Role", "roleDefinitionName"),
    Col("Scope", "scope", tty=short_scope),
]
