"""Commands for the local token endpoint: serve, env."""


import os
import shlex
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import Result, command
from msi_cli.cli.options import FindGroupOpt, FindSubscriptionOpt, NameOpt, StateArg, targets
from msi_cli.cli.statepath import state_file
from msi_cli.cli.render import Output

if TYPE_CHECKING:
    from msi_cli.core.model import State
    from msi_cli.server.faults import Fault
    from msi_cli.server.runfile import RunRecord
    from msi_cli.store.statefile import StateFile


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


# Every variable azure-identity, msal or @azure/identity looks at to choose a credential source:
# the managed identity hosts (Service Fabric, App Service, Arc, Azure ML, Cloud Shell, IMDS), the
# workload identity and service principal variables (DefaultAzureCredential tries those first;
# AZURE_CLIENT_ID also selects a user-assigned identity), and DefaultAzureCredential's selector.
# `msi env` unsets each one it does not set, so a CI shell's own identity cannot win.
HOST_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT",
                  "MSI_ENDPOINT", "MSI_SECRET", "AZURE_POD_IDENTITY_AUTHORITY_HOST", "MSAL_MANAGED_IDENTITY_ENDPOINT",
                  "AZURE_FEDERATED_TOKEN_FILE", "AZURE_KUBERNETES_TOKEN_PROXY", "AZURE_TENANT_ID", "AZURE_CLIENT_ID",
                  "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                  "AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_TOKEN_CREDENTIALS",
                  # and a GitHub job's token request (`msi env --github`), which a later env for a pod or host must not leave
                  "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")


@app.command(
    "serve",
    epilog="Example: msi serve --port 8080 --https-port 8443\n\n"
    "Example: msi serve --fault vm1:410:count=2 --fault web1:throttle \\\n"
    "             --fault '*:latency=200ms'",
)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", envvar="MSI_SERVE_HOST", help="Address to listen on. Keep loopback: the endpoint hands tokens to anyone who reaches it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="MSI_SERVE_PORT", min=0, max=65535, help="Port of the plain HTTP endpoints (IMDS, App Service); 0 picks a free one.")] = 0,
    https_port: Annotated[int, typer.Option("--https-port", envvar="MSI_SERVE_HTTPS_PORT", min=0, max=65535, help="Port of the HTTPS endpoints (Entra's discovery, keys and token endpoint per tenant, Azure Resource Manager), with a certificate from msi's local CA; 0 picks a free one (an issuer msi plays is at this port: fix it to keep federated credentials working across restarts).")] = 0,
    fault: Annotated[
        Optional[list[str]],
        typer.Option("--fault", envvar="MSI_SERVE_FAULT", metavar="TARGET:KIND[:OPTION]",
                     help="Inject a fault for client testing (repeatable). KIND: throttle (429 past 20 requests/s or 5 "
                          "concurrent), 410, 429, a 5xx status, or latency=250ms. OPTION: count=N or share=25%; "
                          "throttle also takes rps=N and concurrent=N. TARGET: resource name or id, or '*'."),
    ] = None,
    request_timeout: Annotated[float, typer.Option("--request-timeout", envvar="MSI_SERVE_TIMEOUT", min=0.1, help="Seconds a client may take to send a request (also the keep-alive idle limit).")] = 10.0,
    https_workers: Annotated[Optional[int], typer.Option("--https-workers", envvar="MSI_SERVE_HTTPS_WORKERS", min=1, max=16, metavar="N", help="Processes answering the HTTPS port (Entra's token exchange signs on one CPU each); default one per CPU, at most 4; 1 keeps everything in this process.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request to stderr (errors are always logged).")] = False,
) -> None:
    """Serve tokens to unmodified Azure SDK clients: every resource in the state gets its host's
    managed identity endpoint (IMDS for VMs and scale sets; the App Service protocol for web,
    function and container apps), plus OpenID discovery and JWKS per tenant.

    Two ports: plain HTTP for the managed identity endpoints, as in Azure, and HTTPS for what
    clients only accept over TLS (Entra's v1 and v2 discovery and keys per tenant, and the Azure
    Resource Manager requests of az and the management SDKs for identities, resource groups and
    role assignments: see `msi env --az`), with a server certificate from msi's local CA (made on
    first need; see `msi tls show`). Prints the HTTP base
    URL, then the HTTPS one, on stdout, records both in the state's private folder for `msi env`,
    reads the state live (CLI changes apply to the next request) and stops cleanly on Ctrl-C."""
    import gc

    from msi_cli.server import faults as fault_specs
    from msi_cli.server.service import Server

    gc.enable()  # `msi` runs a command without the cycle collector (cli.run); a server runs for hours
    parsed = [fault_specs.parse(spec) for spec in fault or []]
    sf = state_file(ctx)
    if any(spec.target != "*" for spec in parsed):
        _check_fault_targets(sf.read(), parsed)
    if https_workers is None:
        from msi_cli.server.worker import default_count

        https_workers = default_count()
    server = Server(sf, host, port, parsed, request_timeout=request_timeout, verbose=verbose, https_port=https_port,
                    https_workers=https_workers)
    if host not in ("127.0.0.1", "::1", "localhost"):
        _note(f"warning: listening on {host}: any machine that reaches it can take this state's tokens")

    def ready(url: str) -> None:
        setup = server.tls_setup
        assert setup is not None  # serve always starts the HTTPS listener (--https-port is a number) before ready()
        _note(f"listening on {url} (IMDS, App Service) and {server.https_url} (Entra discovery and keys, Resource Manager) "
              f"for state {sf.path} (Ctrl-C to stop)")
        if server.workers:
            pids = ", ".join(str(proc.pid) for proc in server.workers)
            _note(f"HTTPS answered by {len(server.workers) + 1} processes (this one and workers {pids})")
        if setup.ca_created:
            _note(f"made a local certificate authority: {setup.ca_path} (msi tls show)")
        if not setup.roots_source:
            _note("warning: no public root certificates found (no certifi, no OpenSSL default file): "
                  "REQUESTS_CA_BUNDLE from 'msi env' trusts msi's CA only")
        _warn_stale_issuers(sf, server.https_url)
        _note("point a client at a resource with: eval \"$(msi env RESOURCE)\"")
        for spec in parsed:
            _note(f"fault: {spec.spec}")
        sys.stdout.write(f"{url}\n{server.https_url}\n")  # last: a reader of stdout then finds the notes logged
        sys.stdout.flush()

    import signal

    stopped_by = server.run(ready)
    _note("stopped")
    if stopped_by == signal.SIGINT:  # Ctrl-C: interrupted, as every command reports it
        raise typer.Exit(130)


def _warn_stale_issuers(sf: "StateFile", https_url: str) -> None:
    """Federated credentials that trust msi's issuers at the HTTPS port of an earlier run no longer
    match the tokens this run's issuers sign: say so, and how to keep them working."""
    from msi_cli.core import issuers

    for origin, count in sorted(issuers.elsewhere(sf.read(), https_url).items()):
        port = origin.rsplit(":", 1)[1]
        _note(f"warning: {count} federated credential(s) trust msi's issuers at {origin}, not {https_url}: their "
              f"exchanges fail (AADSTS700211); serve on that port again with --https-port {port} (or MSI_SERVE_HTTPS_PORT)")


def _check_fault_targets(state: "State", parsed: "list[Fault]") -> None:
    """A fault must name a resource that exists (by name or id), or '*': a typo would otherwise
    inject nothing, silently."""
    from msi_cli.core import lookup
    from msi_cli.errors import NotFound

    known = {r.name.lower() for r in state.resources.values()} | set(state.resources)
    for spec in parsed:
        if spec.target != "*" and spec.target not in known:
            close = lookup.did_you_mean(spec.target, [r.name for r in state.resources.values()])
            raise NotFound(f"--fault '{spec.spec}': resource '{spec.target}' not found", hint=close or "name a resource of this state, or '*'")


def _note(message: str) -> None:
    from msi_cli.server.serverlog import printable  # a state path or fault spec may hold control characters

    sys.stderr.write(f"msi serve: {printable(message, 2000)}\n")
    sys.stderr.flush()


def _default_shell() -> Shell:
    name = os.path.basename(os.environ.get("SHELL", ""))
    return Shell(name) if name in ("bash", "zsh", "fish") else Shell.bash


def _quote(shell: Shell, value: str) -> str:
    if shell is Shell.fish:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if shell is Shell.powershell:
        from msi_cli.cli.azsetup import ps_quote

        return ps_quote(value)
    return shlex.quote(value)


# (unset, set) lines per shell; bash and zsh share the POSIX form.
_SYNTAX = {
    Shell.fish: ("set -e {name}", "set -gx {name} {value}"),
    Shell.powershell: ("Remove-Item Env:{name} -ErrorAction SilentlyContinue", "$Env:{name} = {value}"),
}
_POSIX = ("unset {name}", "export {name}={value}")


def shell_lines(variables: dict[str, str], shell: Shell) -> str:
    """Lines that set `variables` and unset every other variable that would make a client pick
    another source (an earlier `msi env` for another kind of host, or a CI job's own identity)."""
    unset, set_ = _SYNTAX.get(shell, _POSIX)
    lines = [unset.format(name=name) for name in HOST_VARIABLES if name not in variables]
    lines += [set_.format(name=name, value=_quote(shell, value)) for name, value in variables.items()]
    return "\n".join(lines) + "\n"


def _tsv_lines(variables: dict[str, str], **options: Any) -> str:
    return "".join(f"{k}\t{v}\n" for k, v in variables.items())


def _shell_output(shown: tuple[dict[str, str], str], shell: Optional[Shell], **options: Any) -> str:
    """The table form of `msi env`: shell lines for eval, then (--az) az's cloud commands."""
    variables, az_commands = shown
    return shell_lines(variables, shell or _default_shell()) + az_commands


@command(
    app,
    "env",
    formats={Output.table: _shell_output, Output.tsv: _tsv_lines},
    epilog="Example: eval \"$(msi env vm1)\"\n\n"
    "Example: msi env web1 --shell fish | source\n\n"
    "Example: msi env vm1 -o json\n\n"
    "Example: msi env web1 --query IDENTITY_HEADER -o tsv\n\n"
    "Example: eval \"$(msi env vm1 --az)\" && az login --identity",
)
def env(
    resource: Annotated[
        Optional[str], typer.Argument(metavar="[NAME]", help="The resource whose host the client should act as (name or id).", show_default=False)
    ] = None,
    name: NameOpt = None,
    client_id: Annotated[Optional[str], typer.Option("--client-id", help="Also set AZURE_CLIENT_ID, which DefaultAzureCredential uses to select a user-assigned identity.")] = None,
    shell: Annotated[Optional[Shell], typer.Option("--shell", envvar="MSI_SHELL", case_sensitive=False, help="Syntax of the lines: bash, zsh, fish or powershell (default: from $SHELL, else bash).")] = None,
    resource_group: FindGroupOpt = None,
    subscription: FindSubscriptionOpt = None,
    workload: Annotated[bool, typer.Option("--workload", help="Workload identity federation: RESOURCE is a user-assigned identity; with --issuer and --subject.")] = False,
    issuer: Annotated[Optional[str], typer.Option("--issuer", help="With --workload, --github or --kubernetes: the issuer msi plays (default: one per kind, created on first use).")] = None,
    subject: Annotated[Optional[str], typer.Option("--subject", help="With --workload: the 'sub' of the tokens in the token file.")] = None,
    github: Annotated[Optional[str], typer.Option("--github", metavar="OWNER/REPO[@BRANCH]", help="Act as a GitHub Actions job of this repository (branch main by default).")] = None,
    kubernetes: Annotated[Optional[str], typer.Option("--kubernetes", metavar="NAMESPACE/SERVICEACCOUNT", help="Act as a Kubernetes pod running as this service account.")] = None,
    az: Annotated[bool, typer.Option("--az", envvar="MSI_ENV_AZ", help="Also set up the Azure CLI: its own AZURE_CONFIG_DIR in the state's private folder, instance discovery and telemetry off, and (shell output) the 'az cloud register/set' commands for a cloud named msi whose Resource Manager is msi serve.")] = False,
    *, sf: StateArg,
) -> Result:
    """Print the environment that makes azure-identity and msal talk to the running `msi serve`
    as this resource's host, or (`--workload`, `--github`, `--kubernetes`) as a workload that
    trades an external token for a user-assigned identity's token.

    Web and function apps: IDENTITY_ENDPOINT and IDENTITY_HEADER (App Service 2019-08-01) and, as
    App Service sets them too, MSI_ENDPOINT and MSI_SECRET. Container apps: IDENTITY_ENDPOINT and
    IDENTITY_HEADER. VMs and scale sets: AZURE_POD_IDENTITY_AUTHORITY_HOST, the IMDS address that
    both azure-identity and msal honour. Plus, for the HTTPS endpoints, trust in msi's local CA:
    REQUESTS_CA_BUNDLE (certifi's roots plus the CA), SSL_CERT_FILE and CURL_CA_BUNDLE (the
    system's roots file plus the CA) and NODE_EXTRA_CA_CERTS (the CA). The shell lines also unset
    every other variable that
    would make a client choose another source (AZURE_TENANT_ID, AZURE_CLIENT_ID unless --client-id
    is given, AZURE_FEDERATED_TOKEN_FILE, IDENTITY_SERVER_THUMBPRINT, IMDS_ENDPOINT, ...). Default
    output is shell lines for eval; `-o json` prints a flat object of the variables it sets.

    Workload identity: AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE (kept fresh by
    `msi serve`) and AZURE_AUTHORITY_HOST (the server's HTTPS address); `--github` adds
    ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN. The managed-identity host
    variables are unset."""
    from msi_cli.errors import MsiError
    from msi_cli.server import runfile

    resource = targets(resource, name, None, many=False, with_ids=False)[0]
    record = runfile.running(sf.server_path)
    if record is None:
        raise MsiError(f"no 'msi serve' is running for state {sf.path}", hint="start one with: msi serve")
    if workload or github is not None or kubernetes is not None:
        from msi_cli.cli.federation import workload_variables

        variables = workload_variables(sf, record, resource, workload, issuer, subject, github, kubernetes, resource_group, subscription)
    else:
        if issuer is not None or subject is not None:
            from msi_cli.errors import InvalidArgument

            raise InvalidArgument(f"{'--issuer' if issuer is not None else '--subject'} is for a workload",
                                  hint="add --workload (or use --github / --kubernetes)")
        variables = _host_variables(sf, record, resource, resource_group, subscription)
        if client_id is not None:
            variables["AZURE_CLIENT_ID"] = client_id
    if record.https_url:  # trust msi's CA for the HTTPS endpoints
        from msi_cli.store.ca import trust_variables

        variables.update(trust_variables(sf.private))
    commands = ""
    if az:
        from msi_cli.cli import azsetup

        if not record.https_url:
            raise MsiError("the running 'msi serve' has no HTTPS listener, which az needs for Resource Manager",
                           hint="restart it with this version of msi")
        variables.update(azsetup.variables(sf.private))
        commands = azsetup.commands(record.https_url, powershell=(shell or _default_shell()) is Shell.powershell)
    # shell lines (the table form) end with az's commands; json, tsv and --query show the variables
    return Result(variables, table=lambda: (variables, commands))


def _host_variables(sf: "StateFile", record: "RunRecord", resource: str, resource_group: Optional[str], subscription: Optional[str]) -> dict[str, str]:
    """The variables of the resource's managed identity host (IMDS or App Service)."""
    from msi_cli.core import lookup, tokens
    from msi_cli.server import routes

    res = lookup.host(sf.read(), resource, resource_group, subscription)
    host = res.rtype.host
    if host == routes.APPSERVICE:
        endpoint, secret = routes.token_endpoint(record.url, res), record.identity_header(res.id)
        assert endpoint is not None  # every App Service host has a token endpoint
        variables = {"IDENTITY_ENDPOINT": endpoint, "IDENTITY_HEADER": secret}
        if res.rtype.arm_type == "Microsoft.Web/sites":  # App Service also sets the legacy pair
            variables.update(MSI_ENDPOINT=endpoint, MSI_SECRET=secret)
    else:
        tokens.require_endpoint(res)
        variables = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": routes.host_prefix(record.url, res)}
    return variables
