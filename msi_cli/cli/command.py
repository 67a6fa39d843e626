"""One way to declare a command: the function returns data; `-o/--output` and `--query` are added
to its options, the state file is handed to it, and its result is rendered, in one place (knack's
output producer).

    @command(app, "show", epilog="Example: msi show web1")
    def show(target: ..., resource_group: GroupOpt = None, *, sf: StateArg) -> dict[str, Any]:
        return show_data(sf.read(), target, resource_group, ...)

A keyword-only parameter named `sf` (annotated `options.StateArg`) is not an option: it receives
the StateFile of this command line (its `--state`, else MSI_STATE, else the app dir), taken from
the click context, never from a global.

A command whose output has a special form in one format declares it instead of printing it:
`formats={Output.tsv: lambda data, **options: data["access_token"] + "\\n"}` prints the bare token
for `-o tsv` (unless `--query` is given, which always goes through the renderer, as in az). The
formatter gets the command's own options as keyword arguments (`env` needs `--shell`).

A command may return a `Result` instead of bare data: its `table` (a function, called only for a
table without --query) gives what a table shows (its rows, or what a declared table format gets:
`env`'s shell lines also print az's commands), under its own `columns` if it names them (else the
command's), and its `error` is raised once the data is
printed (`verify -o json` prints the verdict, then exits 1 for an invalid token). A table (for
people) prints only the error line, which states the reason: the reason is printed once.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import typer

from msi_cli.cli.options import OutputOpt, QueryOpt
from msi_cli.cli.statepath import state_file
from msi_cli.cli.render import Columns, Output, emit
from msi_cli.errors import MsiError
from msi_cli.core.datatype import record

Formatter = Callable[..., str]
STATE_PARAM = "sf"
# Set by `msi demo` while it runs a step: each command's result (before --query) is appended, so the
# narration can use it while the step prints exactly what a user would see.
CAPTURED: ContextVar[list[Any] | None] = ContextVar("CAPTURED", default=None)


@record(frozen=True)
class Result:
    data: Any
    table: Callable[[], Any] | None = None  # what a table shows instead of `data`
    columns: Columns | None = None  # the columns of what `table` gives, instead of the command's
    error: MsiError | None = None  # raised after `data` is printed


def command(
    group: typer.Typer,
    name: str,
    *,
    epilog: str | None = None,
    columns: Columns | Callable[[dict[str, Any]], Columns | None] | None = None,
    output: Output = Output.table,
    formats: dict[Output, Formatter] | None = None,
    **settings: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn` on `group` as command `name`, with `-o` (default `output`) and `--query`.
    `columns` are the table's columns, or a function of the command's options that chooses them."""
    special = dict(formats or {})

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn, eval_str=True)
        wants_state = STATE_PARAM in signature.parameters
        own = [p for p in signature.parameters.values() if p.name != STATE_PARAM]
        added = [
            inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=output, annotation=OutputOpt),
            inspect.Parameter("query", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=QueryOpt),
            inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
        ]

        @functools.wraps(fn)
        def run(*args: Any, output: Output, query: str | None, ctx: typer.Context, **options: Any) -> None:
            extra = {STATE_PARAM: state_file(ctx)} if wants_state else {}
            result = fn(*args, **options, **extra)
            done = result if isinstance(result, Result) else Result(result)
            sink = CAPTURED.get()
            if sink is not None:
                sink.append(done.data)
            data = done.data
            if done.error is not None and output is Output.table and not query:
                # a verdict for people (check-access denied, verify invalid): its error line states
                # the reason, so the verdict is not printed besides it (the reason is said once);
                # json, yaml and tsv still carry the whole verdict for scripts
                raise done.error
            chosen = columns(options) if callable(columns) else columns
            if done.table is not None and output is Output.table and not query:
                data = done.table()
                chosen = done.columns if done.columns is not None else chosen
            formatter = special.get(output)
            if formatter is not None and not query:
                sys.stdout.write(formatter(data, **options))
            else:
                emit(data, output, columns=chosen, query=query)
            if done.error is not None:
                raise done.error

        run.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]  # a function takes any attribute; inspect.signature() reads this one
        annotations = {k: v for k, v in fn.__annotations__.items() if k != STATE_PARAM}
        run.__annotations__ = {**annotations, "output": OutputOpt, "query": QueryOpt, "ctx": typer.Context}
        group.command(name, epilog=epilog, **settings)(run)
        return fn

    return decorate
