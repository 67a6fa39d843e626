"""Write the README's command reference from each command's --help.

    python scripts/gen_docs.py           # rewrite README.md between the markers, in place
    python scripts/gen_docs.py --check   # exit 1 if the README's reference is stale

The reference covers every command registered after `msi_cli.cli.load()`, sub-commands included.
It is rendered as plain text with click's help formatter at a fixed width, from the same
docstrings, help strings and epilogs that `msi COMMAND --help` shows (there through rich), so it
does not depend on the terminal, colour settings or the rich version.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BEGIN = "<!-- BEGIN COMMAND REFERENCE -->"
END = "<!-- END COMMAND REFERENCE -->"
WIDTH = 100


def root_command() -> Any:
    """The click command built from the Typer app, with every command registered."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from msi_cli.cli import click_command

    return click_command()


def walk(command: Any = None, ctx: Any = None, path: str = "msi") -> Iterator[tuple[str, Any, Any]]:
    """(command path, click command, its context) for the root and every visible sub-command, in
    the order `msi --help` lists them."""
    if command is None:
        command = root_command()
    if ctx is None:
        ctx = command.context_class(command, info_name=path, **command.context_settings)
    yield path, command, ctx
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = sub.context_class(sub, info_name=name, parent=ctx, **sub.context_settings)
            yield from walk(sub, sub_ctx, f"{path} {name}")


def plain_help(command: Any, ctx: Any) -> str:
    """`--help` as plain text: click's own layout (usage, help, arguments, options, commands,
    epilog), without rich, at a fixed width. Epilog lines (the examples) are not re-wrapped, so
    each example stays on one line, ready to copy."""
    formatter = ctx.formatter_class(width=WIDTH, max_width=WIDTH)
    command.format_usage(ctx, formatter)
    if command.help and _has_examples(command.help):
        _format_examples_kept(command.help, formatter)
    else:
        command.format_help_text(ctx, formatter)
    command.format_options(ctx, formatter)
    lines = [line.rstrip() for line in formatter.getvalue().rstrip().splitlines()]
    if command.epilog:
        lines.append("")
        lines += [f"  {line}".rstrip() for line in inspect.cleandoc(command.epilog).splitlines()]
    return "\n".join(lines) + "\n"


def _is_example(paragraph: str) -> bool:
    return any(line.startswith(("# ", "msi ")) for line in paragraph.splitlines())


def _has_examples(text: str) -> bool:
    return any(_is_example(p) for p in inspect.cleandoc(text).split("\n\n"))


def _format_examples_kept(text: str, formatter: Any) -> None:
    """The help text as click writes it, but a paragraph of example commands (a `# comment` or
    `msi ...` line) keeps its lines, as `--help` shows them: re-wrapped, a comment swallows the
    command after it."""
    formatter.write_paragraph()
    with formatter.indentation():
        for n, paragraph in enumerate(inspect.cleandoc(text).split("\n\n")):
            if n:
                formatter.write_paragraph()
            if _is_example(paragraph):
                formatter.write("".join(f"{' ' * formatter.current_indent}{line}\n" for line in paragraph.splitlines()))
            else:
                formatter.write_text(paragraph)


def reference() -> str:
    parts = [
        BEGIN,
        "## Command reference",
        "",
        "Generated from each command's `--help` by `scripts/gen_docs.py`; do not edit by hand.",
        "",
    ]
    for path, command, ctx in walk():
        parts += [f"### `{path}`", "", "```text", plain_help(command, ctx).rstrip("\n"), "```", ""]
    parts.append(END)
    return "\n".join(parts)


def render_readme(text: str) -> str:
    """`text` (the README) with the part between the markers replaced by a fresh reference."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md needs the markers {BEGIN} and {END}, in that order")
    return text[:start] + reference() + text[end + len(END):]


def main(argv: list[str]) -> int:
    current = README.read_text(encoding="utf-8")
    fresh = render_readme(current)
    if "--check" in argv:
        if fresh != current:
            print("stale: README.md command reference (run: python scripts/gen_docs.py)", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        with open(README, "w", encoding="utf-8", newline="\n") as f:
            f.write(fresh)
        print("README.md: command reference updated")
    else:
        print("README.md: command reference already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
