"""What `msi env --az` adds for the Azure CLI: a config folder of its own (the user's ~/.azure is
never touched), instance discovery and telemetry off, and the commands that register and select a
cloud whose Resource Manager is `msi serve`'s HTTPS listener."""

from __future__ import annotations

import shlex
from pathlib import Path

CLOUD = "msi"


def variables(private: Path) -> dict[str, str]:
    return {
        "AZURE_CONFIG_DIR": str(private / "azure"),
        "AZURE_CORE_INSTANCE_DISCOVERY": "false",
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
    }


# What PowerShell's tokenizer takes for a single quote (CharExtensions.IsSingleQuote): the ASCII
# one and the typographic ones (U+2018, U+2019, U+201A, U+201B). In a single-quoted string each
# of them is written twice to stand for itself.
_PS_QUOTES = "'\u2018\u2019\u201a\u201b"


def ps_quote(value: str) -> str:
    """`value` as a PowerShell single-quoted string (nothing in it is expanded)."""
    return "'" + "".join(c + c if c in _PS_QUOTES else c for c in value) + "'"


def commands(https_url: str, powershell: bool = False) -> str:
    """Register the cloud (or point it at this server's current address), then select it."""
    arm = https_url.rstrip("/") + "/"
    if powershell:
        q = ps_quote(arm)
        return (f"az cloud register -n {CLOUD} --endpoint-resource-manager {q} 2>$null | Out-Null; "
                f"if (-not $?) {{ az cloud update -n {CLOUD} --endpoint-resource-manager {q} | Out-Null }}\n"
                f"az cloud set -n {CLOUD} --only-show-errors | Out-Null\n")
    q = shlex.quote(arm)
    return (f"az cloud register -n {CLOUD} --endpoint-resource-manager {q} >/dev/null 2>&1 || "
            f"az cloud update -n {CLOUD} --endpoint-resource-manager {q} >/dev/null\n"
            f"az cloud set -n {CLOUD} --only-show-errors >/dev/null\n")
