"""`msi state`: where the state is, start over, and copy a whole state (keys included) between
machines or CI jobs."""

from pathlib import Path
from typing import Annotated, Any

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import command
from msi_cli.cli.confirm import confirm_or_refuse
from msi_cli.cli.options import YesOpt
from msi_cli.cli.render import Output, note

state_app = typer.Typer(
    help="The state file: where it is, start over, copy it whole (keys included) to another machine or CI job.",
    no_args_is_help=True,
    epilog="Example: msi state export fixture.toml   (in one job)\n\nExample: msi state import fixture.toml   (in another)",
)
app.add_typer(state_app, name="state")

SUMMARY_COLUMNS = [
    ("Path", "path"), ("Tenants", "tenants"), ("Subscriptions", "subscriptions"), ("Resources", "resources"),
    ("Identities", "identities"), ("Role assignments", "roleAssignments"), ("Keys", "keys"),
]


@command(
    state_app, "path",
    formats={Output.table: lambda data, **options: data["path"] + "\n", Output.tsv: lambda data, **options: data["path"] + "\n"},
    epilog="Example: msi state path\n\nExample: ls -l \"$(msi state path).d\"",
)
def path(sf: Any = None) -> dict[str, Any]:
    """Print the state file's path (from --state, else MSI_STATE, else the app dir); `-o json`
    also says whether it exists yet."""
    return {"path": str(sf.path), "exists": sf.path.is_file()}


@command(state_app, "reset", output=Output.none, epilog="Example: msi state reset --yes")
def reset(yes: YesOpt = False, sf: Any = None) -> dict[str, Any]:
    """Start over: delete the state file, its private keys, activity log and caches. The next
    command makes a fresh state (one tenant, one subscription). The local CA and a running
    server's record are kept."""
    from msi_cli.store.snapshot import leftovers, reset_state

    existed = sf.path.exists()
    left = not existed and leftovers(sf)  # the file deleted by hand: its keys, log and caches are not the next state's
    if existed or left:
        what = f"the state {sf.path} with its keys and activity log" if existed else f"the keys, activity log and caches left beside {sf.path}"
        confirm_or_refuse(f"Delete {what}?", yes)
        reset_state(sf)
        note(f"msi: deleted {what}; the next command starts a fresh state")
    else:
        note(f"msi: there is no state at {sf.path}; nothing to reset")
    return {"path": str(sf.path), "deleted": existed or left}


@command(
    state_app, "export", columns=SUMMARY_COLUMNS,
    epilog="Example: msi state export fixture.json\n\nExample: msi state import fixture.json   (then, in another job)",
)
def export(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write the copy (replaced if it exists; written 0600).")],
    sf: Any = None,
) -> dict[str, Any]:
    """Copy the whole state to FILE: the state, its private keys and its activity log.

    FILE holds PRIVATE KEYS (tenants' signing keys, identities' certificates): anyone who can read
    it can mint tokens that this state's 'msi verify' accepts. It is written owner-only (0600);
    keep it as you would a secret (a CI secret or a private artifact)."""
    from msi_cli.store.snapshot import export_state

    if str(file) == "-":  # not stdout: a copy with private keys goes to a file of its own, owner-only
        from msi_cli.errors import InvalidArgument

        raise InvalidArgument("state export writes a file, not standard output: the copy holds private keys",
                              hint="name a file, e.g. msi state export fixture.json; it is written 0600")
    return export_state(sf, file)


@command(state_app, "import", columns=SUMMARY_COLUMNS, epilog="Example: msi state import fixture.json")
def import_(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A file written by 'msi state export'.")],
    sf: Any = None,
) -> dict[str, Any]:
    """Replace the state with the copy in FILE (written by 'msi state export').

    The whole copy is validated first (the state as a state file is, and every key it names);
    then the keys and the state file are replaced atomically, under the state's lock, and the old
    state's keys and cached tokens are removed. Anything wrong: nothing is changed."""
    from msi_cli.store.snapshot import import_state

    return import_state(sf, file)
