"""Commands for role assignments and access checks: grant, revoke, check-access."""

from typing import Annotated, Any

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import Result, command
from msi_cli.cli.options import (
    ASSIGNMENT_COLUMNS, FindGroupOpt, FindSubscriptionOpt, StateArg, complete_resources, complete_roles, complete_scopes, complete_targets,
)
from msi_cli.cli.tokens import ClientIdOpt, ObjectIdOpt, ResIdOpt, selector

PrincipalArg = Annotated[
    str,
    typer.Argument(help="A resource (its system-assigned identity), a user-assigned identity, or a principal/client id.", autocompletion=complete_targets),
]
RoleOpt = Annotated[
    str, typer.Option("--role", help="Built-in role name (e.g. 'Key Vault Secrets User') or role definition id.", autocompletion=complete_roles)
]
ScopeOpt = Annotated[
    str, typer.Option("--scope", help="A resource, identity or resource group by name (when only one object has it), or a subscription, resource group or resource id.", autocompletion=complete_scopes)
]

@command(
    app,
    "grant",
    epilog="Example: msi grant web1 --role \"Key Vault Secrets User\" --scope kv1\n\n"
    "Example: msi grant shared-id --role Reader \\\n"
    "             --scope /subscriptions/SUB/resourceGroups/rg1",
)
def grant(principal: PrincipalArg, role: RoleOpt, scope: ScopeOpt, *, sf: StateArg) -> dict[str, Any]:
    """Create a role assignment for an identity's service principal at a scope."""
    from msi_cli.core import roles, shapes

    with sf.transaction() as ctx:
        return shapes.assignment(ctx.state, roles.grant(ctx, principal, role, scope))


@command(app, "revoke", columns=ASSIGNMENT_COLUMNS, epilog="Example: msi revoke web1 --role \"Key Vault Secrets User\" --scope kv1")
def revoke(principal: PrincipalArg, role: RoleOpt, scope: ScopeOpt, *, sf: StateArg) -> list[dict[str, Any]]:
    """Delete the matching role assignment (an orphaned one too, by principal id)."""
    from msi_cli.core import roles, shapes

    with sf.transaction() as ctx:
        return [shapes.assignment(ctx.state, a) for a in roles.revoke(ctx, principal, role, scope)]


@command(app, "check-access", epilog="Example: msi check-access web1 --scope kv1 --role \"Key Vault Secrets User\"")
def check_access(
    resource: Annotated[str, typer.Argument(help="The resource whose identity would act (name or id).", autocompletion=complete_resources)],
    scope: ScopeOpt,
    role: RoleOpt,
    client_id: ClientIdOpt = None, object_id: ObjectIdOpt = None, msi_res_id: ResIdOpt = None,  # which identity
    resource_group: FindGroupOpt = None, subscription: FindSubscriptionOpt = None,
    *, sf: StateArg,
) -> Result:
    """Can this resource's identity act with ROLE at SCOPE? Exit 0 allowed, 1 denied, with the reason.

    The identity is picked as `msi token` picks it. Access is decided by the roles' permissions
    at the scope or above it, as Azure RBAC does."""
    from msi_cli.core import access, lookup
    from msi_cli.core.timefmt import real_now
    from msi_cli.core.context import Ctx
    from msi_cli.errors import MsiError
    from msi_cli.store.keyring import FileKeyRing

    state = sf.read()
    res = lookup.host(state, resource, resource_group, subscription)
    ctx = Ctx(state, real_now() + state.clock_offset, FileKeyRing(sf.keys_dir))
    result = access.check_access(ctx, res, scope, role, selector(client_id, object_id, msi_res_id))
    return Result(result, error=None if result["allowed"] else MsiError(f"access denied: {result['reason']}"))
