"""Commands for workload identity federation: federated credentials (`msi federation`), the
external issuers msi plays (`msi issuer`) and their tokens (`msi oidc-token`)."""


import shlex
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.confirm import confirm_or_refuse
from msi_cli.cli.command import command
from msi_cli.cli.options import FindGroupOpt, FindSubscriptionOpt, StateArg, YesOpt, complete_identities
from msi_cli.cli.render import Col, Columns, Output, text_lines

if TYPE_CHECKING:
    from msi_cli.core.model import Identity, State
    from msi_cli.server.runfile import RunRecord
    from msi_cli.store.statefile import StateFile

federation_app = typer.Typer(
    help="Federated identity credentials of a user-assigned identity: trust an external issuer's tokens.", no_args_is_help=True,
    epilog="Example: msi federation list deploy-id -g ci",
)
app.add_typer(federation_app, name="federation")
issuer_app = typer.Typer(help="External OIDC issuers msi plays (GitHub Actions, Kubernetes, generic).", no_args_is_help=True,
                         epilog="Example: msi issuer create gh --kind github")
app.add_typer(issuer_app, name="issuer")

CREDENTIAL_COLUMNS: Columns = [Col("Name", "name"), Col("Issuer", "issuer"), Col("Subject", "subject"), Col("Audiences", "audiences", rank=1)]
ISSUER_COLUMNS: Columns = [Col("Name", "name"), Col("Kind", "kind"), Col("Issuer", "issuer"), Col("Created", "created", rank=1)]

IdentityArg = Annotated[str, typer.Argument(help="The user-assigned identity (name or id).", autocompletion=complete_identities)]
NameArg = Annotated[str, typer.Argument(help="The credential's name.")]


class IssuerKind(str, Enum):
    github = "github"
    kubernetes = "kubernetes"
    generic = "generic"


def _identity(state: "State", ref: str, resource_group: str | None, subscription: str | None) -> "Identity":
    from msi_cli.core import lookup
    from msi_cli.errors import MsiError, NotFound

    sub_id = lookup.subscription(state, subscription).id if subscription else None
    try:
        return lookup.user_identity(state, ref, resource_group, sub_id, by_option=True)
    except NotFound:
        try:
            lookup.resource(state, ref, resource_group, subscription)
        except MsiError:
            raise NotFound(f"user-assigned identity '{ref}' not found") from None
        raise MsiError(
            f"'{ref}' is a resource: federated identity credentials are supported on user-assigned identities only",
            hint="create one with 'msi create-identity NAME' and attach it",
        ) from None


def _read(sf: "StateFile", identity: str, resource_group: str | None, subscription: str | None) -> "tuple[State, Identity]":
    """The state and the user-assigned identity named on the command line."""
    state = sf.read()
    return state, _identity(state, identity, resource_group, subscription)


def published_base(sf: "StateFile") -> str | None:
    """Where the running `msi serve` publishes issuers: its HTTPS address when the run file
    records one, else its base URL; None when no server runs."""
    from msi_cli.server import runfile

    record = runfile.running(sf.server_path)
    if record is None:
        return None
    return https_url(sf) or record.url


def https_url(sf: "StateFile") -> str | None:
    """The HTTPS address the running server recorded, if any. Read defensively: the run file's
    HTTPS field is written by the TLS part of `msi serve` (the seam between the two)."""
    import json

    try:
        data = json.loads(sf.server_path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    for key in ("httpsUrl", "https_url", "https"):
        value = data.get(key)
        if isinstance(value, str) and value.startswith("https://"):
            return value.rstrip("/")
    url = data.get("url")
    return url.rstrip("/") if isinstance(url, str) and url.startswith("https://") else None


@command(
    federation_app,
    "add",
    epilog="Example: msi federation add ci-id --name main \\\n"
    "             --issuer https://token.actions.githubusercontent.com \\\n"
    "             --subject repo:octo-org/app:ref:refs/heads/main\n\n"
    "Example: msi federation add ci-id --name k8s \\\n"
    "             --issuer \"$(msi issuer show aks --query issuer -o tsv)\" \\\n"
    "             --subject system:serviceaccount:default:app",
)
def add(
    identity: IdentityArg,
    name: Annotated[str, typer.Option("--name", "-n", help="Credential name: 3-120 letters, digits, '-' or '_'.")],
    issuer: Annotated[str, typer.Option("--issuer", help="The external issuer's URL, exactly as its tokens' 'iss' (at most 600 characters).")],
    subject: Annotated[str, typer.Option("--subject", help="The 'sub' its tokens must carry, matched exactly (at most 600 characters).")],
    audience: Annotated[Optional[list[str]], typer.Option("--audience", help="The one audience ('aud') accepted.")] = None,
    resource_group: FindGroupOpt = None,
    subscription: FindSubscriptionOpt = None,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Add (or update, by name) a federated identity credential: Entra then trades the issuer's
    tokens with this subject and audience for the identity's access tokens."""
    from msi_cli.core import federation

    with sf.transaction() as ctx:
        ident = _identity(ctx.state, identity, resource_group, subscription)
        cred = federation.add(ctx, ident, name, issuer, subject, audience or None)
        return federation.shape(ident, cred)


@command(federation_app, "list", columns=CREDENTIAL_COLUMNS, epilog="Example: msi federation list ci-id -o json")
def list_(identity: IdentityArg, resource_group: FindGroupOpt = None, subscription: FindSubscriptionOpt = None, *, sf: StateArg) -> list[dict[str, Any]]:
    """List an identity's federated identity credentials."""
    from msi_cli.core import federation

    state, ident = _read(sf, identity, resource_group, subscription)
    federation._require_user(ident)
    return [federation.shape(ident, c) for c in federation.of_identity(state, ident)]


@command(federation_app, "show", epilog="Example: msi federation show ci-id main -o json")
def show(
    identity: IdentityArg,
    name: NameArg,
    resource_group: FindGroupOpt = None,
    subscription: FindSubscriptionOpt = None,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Show one federated identity credential."""
    from msi_cli.core import federation

    state, ident = _read(sf, identity, resource_group, subscription)
    return federation.shape(ident, federation.find(state, ident, name))


@command(federation_app, "remove",
         epilog="Example: msi federation remove ci-id main --yes")
def remove(
    identity: IdentityArg,
    name: NameArg,
    resource_group: FindGroupOpt = None,
    subscription: FindSubscriptionOpt = None,
    yes: YesOpt = False,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Remove a federated identity credential: the issuer's tokens are refused from then on."""
    from msi_cli.core import federation

    state, ident = _read(sf, identity, resource_group, subscription)
    cred = federation.find(state, ident, name)
    confirm_or_refuse(f"Remove federated identity credential '{cred.name}' of '{ident.name}'?", yes)
    with sf.transaction() as ctx:
        ident = _identity(ctx.state, ident.resource_id, None, None)
        gone = federation.remove(ctx, ident, name)
        return {"deleted": federation.resource_id(ident, gone.name)}


@command(issuer_app, "create",
         epilog="Example: msi issuer create gh --kind github\n\nExample: msi issuer create aks --kind kubernetes")
def issuer_create(
    name: Annotated[str, typer.Argument(help="Issuer name (part of its URL): 1-63 letters, digits, '-' or '_'.")],
    kind: Annotated[IssuerKind, typer.Option("--kind", case_sensitive=False, help="Whose tokens it mints: github, kubernetes or generic.")] = IssuerKind.generic,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Create an OIDC issuer with its own RS256 key. `msi serve` publishes its discovery document
    and JWKS; its issuer URL is {server}/issuers/NAME."""
    from msi_cli.core import issuers

    with sf.transaction() as ctx:
        created = issuers.create(ctx, name, kind.value)
    return issuers.shape(created, published_base(sf))


@command(issuer_app, "list", columns=ISSUER_COLUMNS, epilog="Example: msi issuer list -o json")
def issuer_list(*, sf: StateArg) -> list[dict[str, Any]]:
    """List the issuers msi plays, with their URLs when `msi serve` runs."""
    from msi_cli.core import issuers

    base = published_base(sf)
    return [issuers.shape(i, base) for i in sf.read().issuers.values()]


@command(issuer_app, "show", epilog="Example: msi issuer show gh --query issuer -o tsv")
def issuer_show(
    name: Annotated[str, typer.Argument(help="Issuer name.")],
    *, sf: StateArg,
) -> dict[str, Any]:
    """Show an issuer; `issuer` is its URL (the tokens' 'iss') while `msi serve` runs, else null."""
    from msi_cli.core import issuers

    return issuers.shape(issuers.find(sf.read(), name), published_base(sf))


def _bare_token(data: dict[str, Any], **options: Any) -> str:
    return str(data["token"]) + "\n"


@command(
    app, "oidc-token", formats={Output.table: _bare_token, Output.tsv: _bare_token},
    epilog="Example: msi oidc-token gh --subject repo:octo-org/app:ref:refs/heads/main \\\n"
    "             --audience api://AzureADTokenExchange\n\n"
    "Example: msi oidc-token aks --subject system:serviceaccount:default:app \\\n"
    "             --lifetime 2h\n\n"
    "Example: msi oidc-token ci --subject job-42 --claim team=payments -o json",
)
def oidc_token(
    issuer: Annotated[str, typer.Argument(help="An issuer msi plays (see 'msi issuer list').")],
    subject: Annotated[str, typer.Option("--subject", help="The token's 'sub'. github: repo:OWNER/REPO:ref:refs/heads/BRANCH, "
                                         ":environment:ENV or :pull_request; kubernetes: system:serviceaccount:NS:SA.")],
    audience: Annotated[Optional[str], typer.Option("--audience", help="The token's 'aud' (github: https://github.com/OWNER; "
                                                    "others: api://AzureADTokenExchange).")] = None,
    claim: Annotated[Optional[list[str]], typer.Option("--claim", metavar="NAME=VALUE", help="An extra claim (repeatable).")] = None,
    lifetime: Annotated[Optional[str], typer.Option("--lifetime", help="Validity, e.g. 5m or 1h (github: 5m, others: 1h); at most 366d.")] = None,
    *, sf: StateArg,
) -> dict[str, Any]:
    """Print a token signed by the issuer, as GitHub Actions or a Kubernetes cluster would hand it
    to a workload, on the simulated clock. Table and tsv print the bare token; json adds its claims.
    Needs a running `msi serve`: the issuer URL is the address it publishes the issuer at."""
    from msi_cli.core import issuers
    from msi_cli.core.timefmt import parse_duration, real_now
    from msi_cli.errors import MsiError

    state = sf.read()
    found = issuers.find(state, issuer)
    base = published_base(sf)
    if base is None:
        raise MsiError(f"no 'msi serve' is running for state {sf.path}: an issuer's URL is the address the server publishes it at",
                       hint="start one with: msi serve")
    extra = issuers.parse_claims(claim or [])
    life = parse_duration(lifetime) if lifetime else None
    from msi_cli.store.keyring import FileKeyRing

    claims = issuers.claims_for(found, base, real_now() + state.clock_offset, subject, audience, extra, life)
    token = issuers.sign(FileKeyRing(sf.keys_dir), found, claims)
    return {"token": token, "issuer": claims["iss"], "claims": claims}


# ---- msi env IDENTITY --workload | --github | --kubernetes ------------------------------------------

DEFAULT_ISSUERS = {"github": "github", "kubernetes": "kubernetes", "generic": "workload"}


def _mode(workload: bool, subject: str | None, github: str | None, kubernetes: str | None) -> tuple[str, str]:
    """(issuer kind, subject) from the env options."""
    from msi_cli.errors import InvalidArgument

    if sum((workload, github is not None, kubernetes is not None)) != 1:
        raise InvalidArgument("give exactly one of --workload, --github and --kubernetes")
    if github is not None:
        repo, _, ref = github.partition("@")
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise InvalidArgument(f"invalid repository '{github}'", hint="use OWNER/REPO or OWNER/REPO@BRANCH")
        ref = ref or "main"
        return "github", f"repo:{repo}:ref:{ref if ref.startswith('refs/') else 'refs/heads/' + ref}"
    if kubernetes is not None:
        ns, _, sa = kubernetes.partition("/")
        if not ns or not sa or "/" in sa or ":" in kubernetes:
            raise InvalidArgument(f"invalid service account '{kubernetes}'", hint="use NAMESPACE/SERVICEACCOUNT")
        return "kubernetes", f"system:serviceaccount:{ns}:{sa}"
    if not subject:
        raise InvalidArgument("--workload needs --subject: the 'sub' of the tokens in the token file")
    return "generic", subject


def workload_variables(sf: "StateFile", record: "RunRecord", identity_ref: str, workload: bool, issuer_name: str | None, subject: str | None,
                       github: str | None, kubernetes: str | None, resource_group: str | None, subscription: str | None) -> dict[str, str]:
    """What WorkloadIdentityCredential (and ManagedIdentityCredential's workload mode) read, with a
    token file that `msi serve` keeps fresh; for --github also the job's token request pair."""
    from msi_cli.core import arm, federation, issuers, lookup
    from msi_cli.core.timefmt import real_now
    from msi_cli.errors import MsiError
    from msi_cli.store import projections

    kind, subj = _mode(workload, subject, github, kubernetes)
    authority = https_url(sf)
    if authority is None:
        raise MsiError("the running 'msi serve' has no HTTPS address: workload identity clients refuse an http authority",
                       hint="restart msi serve with HTTPS enabled")
    base = published_base(sf) or record.url
    state = sf.read()
    ident = _identity(state, identity_ref, resource_group, subscription)
    federation._require_user(ident)
    name = issuer_name or DEFAULT_ISSUERS[kind]
    if name.lower() not in state.issuers:
        if issuer_name is not None:
            issuers.find(state, issuer_name)  # a named issuer must exist: raises NotFound
        with sf.transaction() as ctx:
            if name.lower() not in ctx.state.issuers:
                issuers.create(ctx, name, kind)
        state = sf.read()
    issuer = issuers.find(state, name)
    audience = federation.DEFAULT_AUDIENCE
    proj = projections.save(sf.private, issuer.name, subj, audience, None, github=github is not None)
    from msi_cli.store.keyring import FileKeyRing

    projections.refresh(sf.private, state, FileKeyRing(sf.keys_dir), base, real_now() + state.clock_offset, only=proj.id)
    iss = issuers.url(base, issuer.name)
    if not any(c.issuer == iss and c.subject == subj for c in federation.of_identity(state, ident)):
        sys.stderr.write(text_lines([f"note: no federated credential of '{ident.name}' trusts issuer {iss} with subject {subj}; "
                                     f"add one with: msi federation add {shlex.quote(ident.resource_id)} --name NAME --issuer {shlex.quote(iss)} "
                                     f"--subject {shlex.quote(subj)}"]))
    tenant = lookup.tenant_of(state, arm.parts(ident.resource_id).subscription)
    variables = {
        "AZURE_CLIENT_ID": ident.client_id,
        "AZURE_TENANT_ID": tenant.id,
        "AZURE_FEDERATED_TOKEN_FILE": str(projections.token_path(sf.private, proj.id)),
        "AZURE_AUTHORITY_HOST": authority + "/",
    }
    if github is not None:
        variables["ACTIONS_ID_TOKEN_REQUEST_URL"] = f"{base}/github/token?run={proj.id}"
        variables["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = proj.secret
    return variables
