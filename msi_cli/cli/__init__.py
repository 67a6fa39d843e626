"""The `msi` command line: parses, calls the core, renders. Importing it registers every command."""

from __future__ import annotations

from msi_cli.cli import lifecycle as _lifecycle  # noqa: F401  (registers commands)
from msi_cli.cli.app import app


def main() -> None:
    app(prog_name="msi")


__all__ = ["app", "main"]
