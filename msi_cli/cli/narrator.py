"""How `msi demo` tells a story: a Narrator runs real `msi` commands in-process on a throwaway
state, shows each command as a copyable line, then what it printed (as a terminal of the demo's
width shows it, abridged visibly), and says what happened in a line of its own.

A scenario is a function of a Narrator, registered in msi_cli.cli.demo.SCENARIOS.
"""

import contextlib
import io
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any


ABRIDGE_AT = 14  # output lines shown per step; more are abridged visibly


def command_lines(args: list[str], width: int, program: str = "msi") -> list[str]:
    """`$ msi ARGS` as copyable shell lines no wider than `width`: broken between arguments with
    a `\\` continuation, never inside one (a long argument stays whole on its own line)."""
    words = [f'"{a}"' if a.startswith("$(") and a.endswith(")") and '"' not in a else shlex.quote(a) for a in args]  # "$(...)" stays a substitution
    lines, line = [], f"$ {program}"
    for word in words:
        if len(line) + 1 + len(word) + 2 > width and line not in (f"$ {program}", "    "):
            lines.append(line + " \\")
            line = "    " + word
        else:
            line += ("" if line == "    " else " ") + word
    return [*lines, line]


def abridge(text: str, width: int) -> list[str]:
    """A step's output as shown: tokens never (abridged to their first characters), lines wider
    than the console cut with a visible `…`, and at most ABRIDGE_AT lines (the rest counted)."""
    import re

    lines = [re.sub(r"eyJ[\w-]{10,}\.[\w-]+\.[\w-]*", "… (an access token, abridged)", line.rstrip()) for line in text.splitlines()]
    lines = [line if len(line) <= width else line[: width - 1] + "…" for line in lines]
    if len(lines) > ABRIDGE_AT:
        lines = [*lines[: ABRIDGE_AT - 1], f"… ({len(lines) - ABRIDGE_AT + 1} more lines; -o json shows all)"]
    return lines


class Narrator:
    """Runs `msi` commands in-process against one throwaway state: shows each command, what it
    prints (as a terminal of the demo's width would show it), and tells what happened."""

    def __init__(self, state: Path, pace: float = 0.0) -> None:
        from rich.console import Console

        self.state = state
        self.pace = pace
        self.console = Console(highlight=False)  # prose wraps between words at the console's width

    @property
    def width(self) -> int:
        return int(self.console.width)

    def _pause(self) -> None:
        if self.pace > 0:
            import time

            time.sleep(self.pace)

    def say(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(text), style="italic")

    def title(self, text: str) -> None:
        self.console.rule(text)

    def fact(self, text: str) -> None:
        from rich.text import Text

        from msi_cli.cli.terminal import short_id

        # wrapped between words (a GUID is one word, never broken); an ARM id as its name
        self.console.print(Text("  → " + short_id(text)), style="bold")

    def _show(self, lines: list[str], style: str) -> None:
        from rich.text import Text

        for line in lines:
            self.console.print(Text(line), style=style, soft_wrap=True)

    def run(self, *args: str, ok: bool = True, shown: str | None = None) -> Any:
        """Run one command as a user would type it; print it, then what it printed; return its
        result (after --query, as JSON would give it), or its error line."""
        from msi_cli.cli import click_command, load
        from msi_cli.cli.command import CAPTURED
        from msi_cli.cli.render import TERMINAL

        load()
        self._pause()
        self._show(command_lines(shlex.split(shown) if shown else list(args), self.width), "cyan")
        out, err = io.StringIO(), io.StringIO()
        code = 0
        captured: list[Any] = []
        tokens = (CAPTURED.set(captured), TERMINAL.set((True, self.width)))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = click_command().main(args=["--state", str(self.state), *args], prog_name="msi", standalone_mode=False) or 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                CAPTURED.reset(tokens[0])
                TERMINAL.reset(tokens[1])
        if (code == 0) != ok:
            raise RuntimeError(f"demo step '{args}' exited {code}: {err.getvalue().strip() or out.getvalue().strip()}")
        self._show(abridge(out.getvalue(), self.width), "default")
        for line in err.getvalue().splitlines():  # the reason in full: wrapped between words, an id kept whole
            import textwrap

            wrapped = textwrap.wrap(line, self.width, break_long_words=False, break_on_hyphens=False, subsequent_indent="  ")
            self._show(wrapped, "red" if line.startswith("error") else "yellow")
        if not captured:
            return err.getvalue().strip()
        result = json.loads(json.dumps(captured[-1]))
        if "--query" in args:
            from msi_cli.cli.query import apply_query

            result = apply_query(result, args[list(args).index("--query") + 1])
        said = summary(result) if code == 0 and isinstance(result, (dict, list)) else ""  # an error line says it
        if said:
            from rich.text import Text

            from msi_cli.cli.terminal import short_id

            self.console.print(Text("  → " + short_id(said)), style="green")
        return result


def _identity_block(r: dict[str, Any]) -> str:
    identity = r["identity"]
    if "principalId" not in identity:  # no system-assigned principal to follow: the output says it
        return ""
    return f"{r['name']}: identity {identity.get('type')}" + (f", principal {identity['principalId']}" if "principalId" in identity else "")


# How to say a result in one line, by the keys that tell its kind apart: the first match wins.
_SUMMARIES: list[tuple[tuple[str, ...], Callable[[dict[str, Any]], str]]] = [
    (("allowed",), lambda r: ("allowed: " if r["allowed"] else "denied: ") + r["reason"]),
    (("access_token",), lambda r: f"a token for {r['resource']}, expires_in {r['expires_in']} s"),
    (("valid",), lambda r: "valid" if r["valid"] else f"invalid: {r['reason']}"),
    (("previousId",), lambda r: f"moved to {r['id']}"),
    (("systemAssignedIdentity",), lambda r: f"system-assigned principal: {r['systemAssignedIdentity'] or 'none'}"),
    (("stillReferencedBy",), lambda r: f"deleted {r['deleted']}; still referenced by {len(r['stillReferencedBy'])} resource(s)"),
    (("userAssignedIdentities", "type"),  # az webapp identity assign
     lambda r: "no identity" if r["type"] == "None" else f"identity {r['type']}" + (f", principal {r['principalId']}" if r.get("principalId") else "")),
    (("signingKid",), lambda r: f"kid {r['signingKid']} signs now; published: {', '.join(r['publishedKids'])}"),
    (("deletedRoleAssignments",),
     lambda r: f"subscription now in tenant {r['tenantId']}; {len(r['deletedRoleAssignments'])} role assignment(s) deleted"),
    (("deleted",), lambda r: f"deleted {r['deleted'].rsplit('/', 1)[-1]}"),
    (("kid", "kind"), lambda r: ""),  # what the output shows is the point: no summary
    (("roleDefinitionName",), lambda r: ""),
    (("principalId", "clientId"), lambda r: ""),
    (("identity",), _identity_block),
    (("tenantId", "displayName"), lambda r: ""),
    (("tenantId", "name"), lambda r: ""),
    (("oid",), lambda r: f"oid {r['oid']}, tid {r.get('tid')}"),
    (("id", "name"), lambda r: ""),
]


def summary(result: object) -> str:
    """One line about what a command's result means for the story ("" when its output says it
    all); never a token."""
    if isinstance(result, dict):
        for keys, say in _SUMMARIES:
            if all(key in result for key in keys):
                return say(result)
    if isinstance(result, list):
        if result and isinstance(result[0], dict) and "principalType" in result[0]:
            return "; ".join(
                f"{a['roleDefinitionName']} for {a['principalId']} ({a['principalType']}, principalName "
                + (f'"{a["principalName"]}"' if a['principalName'] else '"": orphaned') + ")"
                for a in result
            )
        return ""
    if isinstance(result, str) and result.startswith("eyJ"):
        return "(an access token)"
    return str(result)
