"""Commands for credentials and tokens: token, verify, jwks."""


from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import Result, command
from msi_cli.cli.options import (
    DefaultTenantOpt,
    FindGroupOpt,
    FindSubscriptionOpt,
    IdsOpt,
    NameOpt,
    StateArg,
    complete_audiences,
    complete_resources,
    complete_tenants,
    targets,
)
from msi_cli.cli.render import Output

if TYPE_CHECKING:
    from msi_cli.core.tokens import Selector

AudienceOpt = Annotated[
    str,
    typer.Option(
        "--audience", "--resource", metavar="URI", help="The resource URI the token is for, e.g. https://vault.azure.net.",
        autocompletion=complete_audiences,
    ),
]
ClientIdOpt = Annotated[Optional[str], typer.Option("--client-id", help="Select the identity by client id.")]
ObjectIdOpt = Annotated[Optional[str], typer.Option("--object-id", help="Select the identity by object (principal) id.")]
ResIdOpt = Annotated[Optional[str], typer.Option("--msi-res-id", "--mi-res-id", help="Select a user-assigned identity by resource id.")]


def selector(client_id: str | None, object_id: str | None, msi_res_id: str | None) -> "Selector":
    from msi_cli.core.tokens import Selector
    from msi_cli.errors import InvalidArgument

    chosen = Selector(client_id, object_id, msi_res_id)
    if chosen.given() > 1:
        raise InvalidArgument("give at most one of --client-id, --object-id and --msi-res-id")
    return chosen


@command(
    app,
    "token",
    formats={Output.tsv: lambda response, **options: response["access_token"] + "\n"},  # the bare token
    epilog="Example: msi token vm1 --audience https://vault.azure.net -o tsv\n\n"
    "Example: msi token vm1 --audience https://management.azure.com/ -o json \\\n"
    "             --client-id 00000000-0000-0000-0000-000000000000",
)
def token(
    audience: AudienceOpt,
    resource: Annotated[
        Optional[str],
        typer.Argument(metavar="[NAME]", help="The resource whose host asks for the token (name or id).", autocompletion=complete_resources, show_default=False),
    ] = None,
    name: NameOpt = None,
    ids: IdsOpt = None,
    client_id: ClientIdOpt = None, object_id: ObjectIdOpt = None, msi_res_id: ResIdOpt = None,  # which identity
    resource_group: FindGroupOpt = None, subscription: FindSubscriptionOpt = None,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Get an access token as the resource's host hands it out (IMDS response shape).

    Without a selector: the system-assigned identity if enabled; on VMs and scale sets (IMDS) else
    the only user-assigned one, while web, function and container apps (the App Service protocol)
    need a selector for a user-assigned identity. Refusals are worded as the host words them.
    The platform caches each token: asking again returns it with a smaller expires_in.
    `-o tsv` prints the bare access token."""
    from msi_cli import tokenservice
    from msi_cli.core import lookup, tokens
    from msi_cli.errors import MsiError, TokenError

    ref = targets(resource, name, ids, many=False)[0]
    if ids is not None:
        resource_group = subscription = None
    state = sf.read()
    res = lookup.host(state, ref, resource_group, subscription)
    tokens.require_endpoint(res)
    try:
        return tokenservice.acquire(sf, res, audience, selector(client_id, object_id, msi_res_id), state)
    except TokenError as exc:
        if res.rtype.host != "appservice":
            raise
        status, message = tokens.appservice_answer(exc)
        raise MsiError(f"HTTP {status}: {message}", hint=exc.reason) from None


@command(
    app,
    "verify",
    epilog="Example: msi verify --audience https://vault.azure.net \\\n"
    "             \"$(msi token vm1 --audience https://vault.azure.net -o tsv)\"\n\n"
    "Example: msi verify - < token.jwt   (the token from stdin)",
)
def verify(
    token: Annotated[str, typer.Argument(help="The access token (a JWT); '-' reads it from stdin.")],
    audience: Annotated[Optional[str], typer.Option("--audience", help="Also require this audience.")] = None,
    *, sf: StateArg,
) -> Result:
    """Validate a token: signature against the issuing tenant's published keys, exp/nbf against the
    simulated clock, and the audience if given. Exit 0 valid, 1 invalid."""
    from msi_cli.core import verify as checker
    from msi_cli.core.timefmt import real_now
    from msi_cli.errors import MsiError
    from msi_cli.store.keyring import FileKeyRing

    if token == "-":
        from msi_cli.cli.options import standard_input

        token = standard_input()
    token = token.strip()
    if not token.isascii():  # a JWT is base64url parts joined by dots; anything else is not one
        from msi_cli.errors import InvalidArgument

        raise InvalidArgument("the token is not a JWT: it holds characters outside ASCII")
    state = sf.read()
    result = checker.verify(state, FileKeyRing(sf.keys_dir), real_now() + state.clock_offset, token, audience)
    return Result(result, error=None if result["valid"] else MsiError(f"invalid token: {result['reason']}"))


@command(
    app, "jwks", output=Output.json, columns=[("kid", "kid"), ("kty", "kty"), ("use", "use"), ("e", "e")],
    epilog="Example: msi jwks --tenant Contoso -o json",
)
def jwks(
    tenant: DefaultTenantOpt = None,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Print a tenant's public signing keys as a JWKS (kty, use, kid, x5t, n, e, x5c)."""
    from msi_cli.core import credentials, lookup, tokens

    with sf.transaction() as ctx:
        t = lookup.tenant(ctx.state, tenant) if tenant else lookup.tenant_of(ctx.state, ctx.state.default_subscription_id)
        credentials.signing_key(ctx, t)  # a tenant always has a current key; roll it when due
        return tokens.jwks(ctx.keys, t, ctx.now_iso)


tenant_app = typer.Typer(help="Operate on a tenant's directory (signing keys).", no_args_is_help=True,
                         epilog="Example: msi tenant roll-keys Contoso")
app.add_typer(tenant_app, name="tenant")


@command(tenant_app, "roll-keys",
         epilog="Example: msi tenant roll-keys \"Default Directory\"\n\nExample: msi tenant roll-keys Contoso --emergency")
def roll_keys(
    tenant: Annotated[str, typer.Argument(help="Tenant name or id.", autocompletion=complete_tenants)],
    emergency: Annotated[bool, typer.Option("--emergency", help="Also withdraw the old key at once: tokens it signed stop verifying.")] = False,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Roll the tenant's token-signing key now: the published next key signs from now on and a new
    next key is published, so the JWKS always holds more than one valid key. The old key stays
    published until its tokens expire, unless --emergency withdraws it at once (as Entra may), for
    testing clients against an unknown kid."""
    from msi_cli.core import credentials, lookup
    from msi_cli.store.tokencache import TokenCache

    with sf.transaction() as ctx:
        result = credentials.roll_keys(ctx, lookup.tenant(ctx.state, tenant), emergency)
        if emergency:  # the platform does not hand out tokens no one can verify
            TokenCache(sf.tokens_path).drop_signed_by(result["previousKid"])
    return result
