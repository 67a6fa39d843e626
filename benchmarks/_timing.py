"""Shared helpers for the benchmark scripts: whole-process timing interleaved with a floor."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

FLOOR = [sys.executable, "-c", "import typer"]


def msi_command() -> list[str]:
    """The installed `msi` from this environment, falling back to `python -m msi_cli`."""
    exe = Path(sys.executable).with_name("msi")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "msi_cli"]


def precompile() -> None:
    """Byte-compile the package as `pip install` does, even where PYTHONDONTWRITEBYTECODE is set,
    so the figures show what an installed msi costs, not the compiler."""
    import compileall

    import msi_cli

    compileall.compile_dir(str(Path(msi_cli.__file__).parent), quiet=1)


def run(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}: {proc.stderr.decode().strip()}")
    return elapsed


def interleaved(cmds: list[list[str]], env: dict, rounds: int) -> tuple[float, float]:
    """Median seconds of a command (cycling through `cmds`) and of the floor, run alternately."""
    timed, floor, _ = paired(cmds, env, rounds)
    return timed, floor


def paired(cmds: list[list[str]], env: dict, rounds: int) -> tuple[float, float, float]:
    """As `interleaved`, and the median of each run's ratio to the floor run just before it. On
    a machine whose speed drifts (the floor here moves between 66 and 107 ms within minutes), a
    ratio of two runs a moment apart varies far less than a ratio of medians taken over minutes."""
    floor, timed, ratios = [], [], []
    for n in range(rounds):
        floor.append(run(FLOOR, env))
        timed.append(run(cmds[n % len(cmds)], env))
        ratios.append(timed[-1] / floor[-1])
    return statistics.median(timed), statistics.median(floor), statistics.median(ratios)


def environment(state: Path) -> dict:
    env = dict(os.environ)
    env["MSI_STATE"] = str(state)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "120"
    return env


def copy_state(src: Path, dst: Path) -> None:
    shutil.copytree(src.parent, dst.parent, dirs_exist_ok=True)


def table(rows: list[tuple], headers: tuple) -> str:
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[n]) for r in cells) for n in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
