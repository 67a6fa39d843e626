"""Confirmation for destructive commands, as `az ... delete` asks for it."""

from __future__ import annotations

import sys

import typer

from msi_cli.errors import InvalidArgument


def confirm_or_refuse(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise InvalidArgument(f"{question.rstrip('?')}: refused without confirmation", hint="pass --yes to confirm when there is no terminal")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Abort()
