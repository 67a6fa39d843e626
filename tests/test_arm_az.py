"""The real `az` (azure-cli, installed into its own environment by the test set-up) against msi's
ARM endpoint: cloud registration, `az login --identity`, identities, VM identity assignment, role
assignments, and a 403 for a caller without the role; each change checked with `msi`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from armkit import KEEP, Served

AZ_VERSION = "2.91.0"
INSTALL_TIMEOUT = 1800


def _cache() -> Path:
    root = os.environ.get("MSI_TEST_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "msi-cli-tests")
    return Path(root) / f"azure-cli-{AZ_VERSION}"


@pytest.fixture(scope="session")
def az_bin() -> Path:
    """azure-cli in a virtual environment of its own under the test cache, installed once."""
    home = _cache()
    az = home / "bin" / "az"
    marker = home / ".installed"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"azure-cli-{AZ_VERSION}.lock", "w") as lock:
        with contextlib.suppress(ImportError):  # one installer at a time (parallel test runs), where flock exists
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            try:
                subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, capture_output=True, timeout=300)
                proc = subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", f"azure-cli=={AZ_VERSION}"],
                                      capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
            except (OSError, subprocess.SubprocessError) as exc:
                pytest.skip(f"azure-cli {AZ_VERSION} could not be installed into {home}: {exc}")
            if proc.returncode != 0 or not az.exists():
                lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if not ln.startswith("WARNING")]
                tail = lines[-2:]
                pytest.skip(f"azure-cli {AZ_VERSION} could not be installed into {home}: {' | '.join(tail)}")
            marker.write_text(AZ_VERSION)
    return az


class Az:
    def __init__(self, az: Path, served: Served) -> None:
        self.az = az
        self.served = served
        self.resource = "runner"
        self._printed: dict[str, dict] = {}  # what `msi env` printed, per resource: the same while msi serve runs

    def env(self) -> dict:
        """A clean environment plus `msi env RESOURCE --az -o json`, nothing else."""
        env = {k: v for k, v in os.environ.items() if k in KEEP}
        if self.resource not in self._printed:
            self._printed[self.resource] = self.served.msi_json("env", self.resource, "--az")
        env.update(self._printed[self.resource])
        return env

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.az), *args], env=self.env(), capture_output=True, text=True, timeout=300)

    def ok(self, *args: str):
        proc = self(*args, "-o", "json")
        assert proc.returncode == 0, f"az {' '.join(args)}:\n{proc.stderr}\n--- msi serve:\n{self.served.log_path.read_text()}"
        return json.loads(proc.stdout) if proc.stdout.strip() else None


def _vm(name: str, kind: str = "vm", system: bool = False) -> str:
    extra = "system_assigned = true\n" if system else ""
    return f'[[resources]]\nname = "{name}"\ntype = "{kind}"\nsubscription = "default"\nresource_group = "ci"\n{extra}'


# the runner (Owner of the subscription) and a VM that may only read the group, beside two to manage
ESTATE = (
    'format = "msi-estate"\n[[resource_groups]]\nname = "ci"\nsubscription = "default"\nlocation = "eastus"\n'
    + _vm("runner", system=True) + _vm("app1") + _vm("web1", "webapp") + _vm("limited", system=True)
    + '[[role_assignments]]\nrole = "Owner"\nscope = "/subscriptions/default"\nresource = "runner"\n'
    + '[[role_assignments]]\nrole = "Reader"\nscope = "/subscriptions/default/resourceGroups/ci"\nresource = "limited"\n'
)


@pytest.fixture
def az(az_bin, tmp_path, isolated_state):
    served = Served(tmp_path)
    estate = tmp_path / "estate.toml"  # one `msi apply`, as a CI job seeds its world
    estate.write_text(ESTATE)
    served.msi("apply", str(estate), "--yes", "-o", "none")
    sub = served.msi_json("list", "subscriptions")[0]["id"]
    served.start()
    client = Az(az_bin, served)
    client.sub = sub
    client.ok("cloud", "register", "-n", "msi", "--endpoint-resource-manager", served.https_url + "/")
    client.ok("cloud", "set", "-n", "msi")
    yield client
    served.stop()


def test_az_scripts_run_against_msi(az):
    served = az.served
    accounts = az.ok("login", "--identity")
    assert [a["id"] for a in accounts] == [az.sub]
    assert accounts[0]["user"] == {"assignedIdentityInfo": "MSI", "name": "systemAssignedIdentity", "type": "servicePrincipal"}
    token = az.ok("account", "get-access-token")
    assert served.msi("verify", token["accessToken"], "--audience", "https://management.core.windows.net/").returncode == 0

    created = az.ok("identity", "create", "-n", "deployer", "-g", "ci")
    shown = served.msi_json("show", "deployer")
    assert created["principalId"] == shown["principalId"]
    # as `az identity show` prints it in Azure: `resourcegroups` in lower case (Azure/azure-cli#27099)
    assert created["id"] == shown["id"].replace("/resourceGroups/", "/resourcegroups/") != shown["id"]
    assert created["location"] == "eastus"  # from the group, which az fetched first
    assert az.ok("identity", "show", "-n", "deployer", "-g", "ci")["clientId"] == shown["clientId"]
    assert [i["name"] for i in az.ok("identity", "list", "-g", "ci")] == ["deployer"]
    listed = az.ok("resource", "list", "-g", "ci", "--resource-type", "Microsoft.ManagedIdentity/userAssignedIdentities")
    assert [r["id"] for r in listed] == [shown["id"]]

    assigned = az.ok("vm", "identity", "assign", "-g", "ci", "-n", "app1", "--identities", shown["id"])
    assert shown["id"] in assigned["userAssignedIdentities"]
    assert list(served.msi_json("show", "app1")["identity"]["userAssignedIdentities"]) == [shown["id"]]
    az.ok("vm", "identity", "assign", "-g", "ci", "-n", "app1")
    system = served.msi_json("show", "app1")["identity"]
    assert system["type"] == "SystemAssigned, UserAssigned"
    az.ok("vm", "identity", "remove", "-g", "ci", "-n", "app1", "--identities", shown["id"])
    assert served.msi_json("show", "app1")["identity"]["type"] == "SystemAssigned"

    # the id as `az identity create` printed it (lower-case `resourcegroups`), as a script passes it on
    web = az.ok("webapp", "identity", "assign", "-g", "ci", "-n", "web1", "--identities", "[system]", created["id"])
    web_shown = served.msi_json("show", "web1")["identity"]
    assert web["principalId"] == web_shown["principalId"]
    assert [k.lower() for k in web["userAssignedIdentities"]] == [shown["id"].lower()]
    assert [v["principalId"] for v in web_shown["userAssignedIdentities"].values()] == [shown["principalId"]]

    scope = f"/subscriptions/{az.sub}/resourceGroups/ci"
    ra = az.ok("role", "assignment", "create", "--assignee-object-id", shown["principalId"],
               "--assignee-principal-type", "ServicePrincipal", "--role", "Reader", "--scope", scope)
    assert ra["scope"] == scope and ra["principalId"] == shown["principalId"]
    mine = served.msi_json("list", "role-assignments", "--principal", shown["principalId"])
    assert [a["roleDefinitionName"] for a in mine] == ["Reader"]
    listed = az.ok("role", "assignment", "list", "--scope", scope, "--fill-principal-name", "false")
    assert ra["id"] in [a["id"] for a in listed]
    az.ok("role", "assignment", "delete", "--ids", ra["id"])
    assert served.msi_json("list", "role-assignments", "--principal", shown["principalId"]) == []

    az.ok("identity", "delete", "-n", "deployer", "-g", "ci")
    assert served.msi("show", "deployer", check=False).returncode == 3

    assert az.ok("group", "create", "-n", "build", "-l", "westeurope")["location"] == "westeurope"
    served.msi("create-identity", "builder", "-g", "build")
    assert az.ok("group", "exists", "-n", "build") is True
    az.ok("group", "delete", "-n", "build", "--yes")
    assert az.ok("group", "exists", "-n", "build") is False
    assert [g["name"] for g in served.msi_json("list", "groups")] == ["ci"]
    assert served.msi("show", "builder", check=False).returncode == 3


def test_az_gets_a_403_without_the_role(az):
    az.resource = "limited"  # Reader on the group only
    az.ok("login", "--identity")
    proc = az("identity", "create", "-n", "sneaky", "-g", "ci")
    assert proc.returncode != 0
    assert "AuthorizationFailed" in proc.stderr
    assert "'Microsoft.ManagedIdentity/userAssignedIdentities/write'" in proc.stderr
    assert az.served.msi("show", "sneaky", check=False).returncode == 3


def _readme_example() -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    after = readme.split("<!-- az-example -->", 1)[1]
    return after.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_readme_az_example_runs_as_written(az_bin, tmp_path, isolated_state):
    from conftest import msi_executable

    msi = Path(msi_executable()[0])
    work = tmp_path / "job"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k in KEEP}
    env.update(PATH=f"{az_bin.parent}{os.pathsep}{msi.parent}{os.pathsep}{os.environ['PATH']}", MSI_STATE=os.environ["MSI_STATE"])
    proc = subprocess.run(["bash", "-c", _readme_example()], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    log = (work / "serve.log").read_text() if (work / "serve.log").exists() else ""
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n--- msi serve:\n{log}"
    assert proc.stdout.strip().endswith("app1 has a token")
    attached = json.loads(proc.stdout.split("app1 has a token")[0])
    assert [k.rsplit("/", 1)[-1] for k in attached] == ["deployer"]


def test_az_login_with_a_federated_token(az):
    """What GitHub's azure/login runs: `az login --service-principal --federated-token` with the
    job's OIDC token, traded at msi's Entra endpoint for an ARM token of the user-assigned
    identity, which then manages what its role allows."""
    served = az.served
    deployer = served.msi_json("create-identity", "deployer", "-g", "ci")
    served.msi("grant", deployer["principalId"], "--role", "Contributor", "--scope", f"/subscriptions/{az.sub}/resourceGroups/ci")
    served.msi("issuer", "create", "gh", "--kind", "github")
    issuer = served.msi("issuer", "show", "gh", "--query", "issuer", "-o", "tsv").stdout.strip()
    subject = "repo:octo-org/app:ref:refs/heads/main"
    # the runner (Owner) gives the identity its federated credential with az, as a platform team would
    az.ok("login", "--identity")
    made = az.ok("identity", "federated-credential", "create", "--name", "main", "--identity-name", "deployer", "-g", "ci",
                 "--issuer", issuer, "--subject", subject, "--audiences", "api://AzureADTokenExchange")
    assert (made["issuer"], made["subject"]) == (issuer, subject)
    assert served.msi_json("federation", "show", "deployer", "main")["subject"] == subject
    listed = az.ok("identity", "federated-credential", "list", "--identity-name", "deployer", "-g", "ci")
    assert [c["name"] for c in listed] == ["main"]
    for cache in Path(az.env()["AZURE_CONFIG_DIR"]).glob("msal_token_cache*"):  # the CI job starts afresh
        cache.unlink()
    token = served.msi("oidc-token", "gh", "--subject", subject, "--audience", "api://AzureADTokenExchange", "-o", "tsv").stdout.strip()

    accounts = az.ok("login", "--service-principal", "-u", deployer["clientId"], "--tenant", deployer["tenantId"],
                     "--federated-token", token)
    assert [a["id"] for a in accounts] == [az.sub]
    access = az.ok("account", "get-access-token")["accessToken"]
    claims = served.msi_json("verify", access, "--audience", "https://management.core.windows.net/")["claims"]
    assert claims["oid"] == deployer["principalId"] and claims["appid"] == deployer["clientId"]
    created = az.ok("identity", "create", "-n", "from-ci", "-g", "ci")
    assert served.msi_json("show", "from-ci")["principalId"] == created["principalId"]

    # a token for another branch matches no federated credential: az reports Entra's refusal
    az.ok("account", "clear")  # a new job: msal's cache is empty (else msal answers without asking the server)
    other = served.msi("oidc-token", "gh", "--subject", "repo:octo-org/app:ref:refs/heads/dev", "--audience",
                       "api://AzureADTokenExchange", "-o", "tsv").stdout.strip()
    refused = az("login", "--service-principal", "-u", deployer["clientId"], "--tenant", deployer["tenantId"], "--federated-token", other)
    assert refused.returncode != 0 and "AADSTS700213" in refused.stderr
