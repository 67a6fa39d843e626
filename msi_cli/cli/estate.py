"""Estates: `apply` a file that declares a whole simulated Azure, `export` the state as one, and
`import az` what `az ... -o json` printed."""


import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from msi_cli.cli.app import app
from msi_cli.cli.command import Result, command
from msi_cli.cli.confirm import confirm_or_refuse, will_ask
from msi_cli.cli.options import YesOpt
from msi_cli.cli.render import Output, text_lines, warn
from msi_cli.errors import InvalidArgument

WhatIfOpt = Annotated[bool, typer.Option("--what-if", help="Print the plan only; change nothing (as az deployment ... what-if).")]
PruneOpt = Annotated[bool, typer.Option("--prune", help="Also delete what the state holds and the file does not (asks first; --yes in scripts).")]


def read_text(path: Path, what: str = "an estate file") -> str:
    """The text of a file the user names ('-': stdin): a regular file, never a FIFO or device that
    would block or never end, of at most 256 MiB (store.files.read_input)."""
    if str(path) == "-":
        from msi_cli.cli.options import standard_input

        return standard_input()
    from msi_cli.store import files

    raw = files.read_input(path, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"{path}: not UTF-8 text (byte {exc.start})") from None


def plan_text(data: dict[str, Any], **options: Any) -> str:
    """The plan as `+`/`~`/`-` lines, then a summary and (after an apply) the ids by name."""
    if "$schema" in data:
        import json

        return json.dumps(data, indent=2) + "\n"
    lines = [f"{c['action'] and _SIGN[c['action']]} {c['kind']} {c['name']}" + (f": {c['detail']}" if c["detail"] else "")
             for c in data["changes"]]
    s = data["summary"]
    verb = "would" if data.get("whatIf") else "applied:"
    tail = f"{verb} create {s['create']}, update {s['update']}, delete {s['delete']}"
    if not data["changes"]:
        tail = "no changes: the state already holds the estate"
    if data.get("kept"):
        tail += f"; {data['kept']} object(s) not in the file kept (--prune deletes them)"
    lines.append(tail)
    report = data.get("import")
    if report:
        lines.append("az files: " + "; ".join(f"{f['file']} ({f['kind']}, {f['items']})" for f in report["files"]))
        for item in report["plainResources"]:
            lines.append(f"kept as a plain resource without identities: {item['id']} ({item['type']})")
        for item in report.get("disambiguated", ()):
            lines.append(f"{item['kind']} {item['id']} is named '{item['name']}' here: another {item['kind']} has the name '{item['azName']}'")
        for item in report["skipped"]:
            lines.append(f"not imported: {item['item']}: {item['reason']}")
        for real, where in report["principals"].items():
            if where.get("kept") is False:
                lines.append(f"principal {real} is simulated as {where.get('simulatedPrincipalId')}")
        kept = sum(1 for w in report["principals"].values() if w.get("kept"))
        if kept:
            lines.append(f"{kept} real principal id(s) kept as they are")
    for section in ("identities", "resources"):
        for name, ids in data.get(section, {}).items():
            lines.append(f"{name}: principalId {ids['principalId']}, clientId {ids['clientId']}")
    return text_lines(lines)


_SIGN = {"create": "+", "update": "~", "delete": "-"}


def run_plan(sf: Any, estate: Any, what_if: bool, prune: bool, yes: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Plan `estate` against the state, ask before a destructive plan, apply it in one transaction."""
    from msi_cli.core.estate import apply as applying
    from msi_cli.core.estate import plan as planning
    from msi_cli.core.estate.changes import DELETE

    if what_if:  # the plan, after the apply itself ran on a copy: what it would refuse is refused here
        from msi_cli.core.estate.whatif import rehearse_apply
        from msi_cli.core.timefmt import real_now

        def rehearse(ctx: Any) -> dict[str, Any]:
            plan = planning.make(estate, ctx.state, prune)
            result = _result(plan, what_if=True, extra=extra)  # before the apply names the ids it made
            applying.apply(ctx, plan)
            warn(ctx.warnings)  # what the apply would warn about, as it would
            return result

        state = sf.read()
        return rehearse_apply(state, real_now() + state.clock_offset, rehearse)
    with sf.transaction() as ctx:
        plan = planning.make(estate, ctx.state, prune)
        if plan.destructive:
            harmful = [change for change in plan.changes if change.op == DELETE or change.destructive]
            if will_ask(yes):  # listed for the person asked; a refusal is one line
                sys.stderr.write(text_lines([change.text() for change in harmful]))
                confirm_or_refuse("Apply this plan (it deletes or detaches what is listed above)?", yes)
            else:
                confirm_or_refuse(f"Apply this plan (it deletes or detaches {len(harmful)} object(s); --what-if lists them)?", yes)
        ids = applying.apply(ctx, plan)
    warn(ctx.warnings)
    return _result(plan, ids=ids, extra=extra)


def _result(plan: Any, what_if: bool = False, ids: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"changes": [c.shape() for c in plan.changes], "summary": plan.counts(), "kept": plan.kept}
    if what_if:
        out["whatIf"] = True
    if ids is not None:
        out.update(ids)
    if plan.remapped:
        out["remapped"] = dict(plan.remapped)
    if extra:
        out.update(extra)
    return out


@command(app, "apply", formats={Output.table: plan_text},
         epilog="Example: msi apply estate.toml --what-if\n\nExample: msi apply estate.toml --yes -o json --query identities\n\n"
                "Example: msi apply --schema")
def apply_estate(
    file: Annotated[Optional[Path], typer.Argument(help="The estate: TOML, or JSON (.json, or text starting with '{'); '-' reads stdin.",
                                                   show_default=False)] = None,
    what_if: WhatIfOpt = False,
    prune: PruneOpt = False,
    yes: YesOpt = False,
    schema: Annotated[bool, typer.Option("--schema", help="Print the estate format's JSON Schema and exit.")] = False,
    sf: Any = None,
) -> dict[str, Any]:
    """Make the state hold the estate a file declares: tenants, subscriptions, resource groups,
    user-assigned identities (with federated credentials), resources with their identities, and role
    assignments. Objects match by name, so applying twice changes nothing the second time.

    Prints the plan: + create, ~ change, - delete (only with --prune). All or nothing: an invalid
    entry is refused with its file and line, and the state is left untouched. -o json returns the
    principalId and clientId of every identity, by the name the file gave it."""
    if schema:
        from msi_cli.core.estate.jsonschema import schema as estate_schema

        return estate_schema()
    if file is None:
        raise InvalidArgument("give the estate FILE to apply", hint="msi apply estate.toml --what-if; msi apply --schema for the format")
    from msi_cli.core.estate.schema import parse

    estate = parse(read_text(file), str(file))
    return run_plan(sf, estate, what_if, prune, yes)


@command(app, "export", epilog="Example: msi export > estate.toml\n\nExample: msi export --format json > estate.json",
         formats={Output.table: lambda data, **o: data["text"]})
def export_estate(
    fmt: Annotated[str, typer.Option("--format", help="toml or json.", case_sensitive=False)] = "toml",
    sf: Any = None,
) -> Result:
    """Write the state as an estate file (names only: no ids, no key material), which `msi apply`
    reproduces on any state, an empty one included. -o json prints the document as JSON."""
    from msi_cli.core.estate.export import export, to_text

    choice = fmt.lower()
    if choice not in ("toml", "json"):
        raise InvalidArgument(f"unknown format '{fmt}'", hint="use toml or json")
    doc = export(sf.read())
    return Result(doc, table=lambda: {"text": to_text(doc, choice)})


import_app = typer.Typer(help="Recreate what exists in Azure from `az ... -o json` output.", no_args_is_help=True,
                         epilog="Example: msi import az ./az-json --what-if")
app.add_typer(import_app, name="import")


@command(import_app, "az", formats={Output.table: plan_text},
         epilog="Example: az account list -o json > account.json && \\\n"
                "             az resource list -o json > resources.json && \\\n"
                "             az role assignment list --all -o json > roles.json\n\n"
                "Example: msi import az . --what-if   (the files above, in this folder)")
def import_az(
    paths: Annotated[list[Path], typer.Argument(help="JSON files, or folders of them, as az printed them (any names).", show_default=False)],
    what_if: WhatIfOpt = False,
    sf: Any = None,
) -> dict[str, Any]:
    """Recreate an estate from the JSON az prints (accounts, groups, resources, identities, role assignments).

    Reads what `az account list`, `az group list`, `az resource list`, `az identity list`, `az vm
    list`/`az webapp list` and `az role assignment list --all` print; each file is recognised by its
    content. Names, resource ids, tenants and subscriptions are kept, and the real principal ids
    where msi can; role assignments point to the simulated identities that stand for the real
    principals. What msi does not model is kept plainly or reported, never fatal."""
    from msi_cli.core.estate import azfiles, azimport

    files = azfiles.collect(paths)
    docs = []
    for path in files:
        docs.append((str(path), read_text(path, "a JSON file az printed")))
    estate, report = azimport.estate(docs, sf.read())
    result = run_plan(sf, estate, what_if, False, True, {"import": report})  # never destructive: no --prune
    if not what_if:
        report["principals"] = azimport.mapping(sf.read(), report["principals"])
    return result
