"""Confirmation for destructive commands, as `az ... delete` asks for it."""

from __future__ import annotations

import sys

from msi_cli.errors import InvalidArgument, MsiError


def confirm_or_refuse(question: str, yes: bool) -> None:
    """Go on with `--yes`; else ask on the terminal (on stderr, default no); with no terminal to
    ask on, refuse (exit 2) with a hint to pass --yes. Answering no changes nothing (exit 1)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InvalidArgument(f"{question.rstrip('?')}: refused without confirmation", hint="pass --yes to confirm when there is no terminal")
    if not _ask(question):
        raise MsiError("cancelled: nothing was changed")


def will_ask(yes: bool) -> bool:
    """Whether `confirm_or_refuse` will put its question to a person (what it asks about may be
    listed first); without one, the refusal is the whole output."""
    return not yes and sys.stdin.isatty()


def _ask(question: str) -> bool:
    """y/yes or n/no (Enter: no), asked and echoed on stderr only. Not typer.confirm: click writes
    a space to stdout before reading the answer, which would sit in front of the command's output."""
    while True:
        sys.stderr.write(f"{question} [y/N]: ")
        sys.stderr.flush()
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:  # Ctrl-C at the prompt: the error goes on a line of its own
            sys.stderr.write("\n")
            raise
        if not line:  # end of input (Ctrl-D): as no
            sys.stderr.write("\n")
            return False
        if not sys.stderr.isatty():  # the terminal echoed the answer, not into this stream: end the question's line
            sys.stderr.write("\n")
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("", "n", "no"):
            return False
        sys.stderr.write("Please answer y or n.\n")
