"""One way to declare a command: the function returns data; `-o/--output` and `--query` are added
to its options, and its result is rendered, in one place (knack's output producer).

    @command(app, "show", columns=RESOURCE_COLUMNS, epilog="Example: msi show web1")
    def show(target: ...) -> dict:
        return show_data(...)

A command whose output has a special form in one format declares it instead of printing it:
`formats={Output.tsv: lambda data, **options: data["access_token"] + "\\n"}` prints the bare token
for `-o tsv` (unless `--query` is given, which always goes through the renderer, as in az). The
formatter gets the command's own options as keyword arguments (`env` needs `--shell`).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

import typer

from msi_cli.cli.options import OutputOpt, QueryOpt
from msi_cli.cli.render import Columns, Output, emit

Formatter = Callable[..., str]


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
        added = [
            inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=output, annotation=OutputOpt),
            inspect.Parameter("query", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=QueryOpt),
        ]

        @functools.wraps(fn)
        def run(*args: Any, output: Output, query: str | None, **options: Any) -> None:
            data = fn(*args, **options)
            formatter = special.get(output)
            if formatter is not None and not query:
                sys.stdout.write(formatter(data, **options))
                return
            chosen = columns(options) if callable(columns) else columns
            emit(data, output, columns=chosen, query=query)

        run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *added])  # type: ignore[attr-defined]
        run.__annotations__ = {**fn.__annotations__, "output": OutputOpt, "query": QueryOpt}
        group.command(name, epilog=epilog, **settings)(run)
        return fn

    return decorate
