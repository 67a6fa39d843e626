"""Table columns shared by several command modules (importing a command module registers its
commands, so shared pieces live here)."""

from msi_cli.cli.render import Columns

ASSIGNMENT_COLUMNS: Columns = [
    ("Principal id", "principalId"),
    ("Principal name", "principalName"),
    ("Principal type", "principalType"),
    ("Role", "roleDefinitionName"),
    ("Scope", "scope"),
]
