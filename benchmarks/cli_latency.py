"""CLI latency as the state grows: whole `msi` processes against states of 100, 1,000 and 10,000
resources, each run interleaved with the floor `python -c "import typer"` from this environment.
Prints the medians and their ratio to the floor. Target: at 1,000 resources every ratio <= 2.0.

Usage: python benchmarks/cli_latency.py [--sizes 100,1000,10000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import environment, interleaved, msi_command, precompile, table
from seed import seed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    precompile()
    msi = msi_command()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            state = Path(tmp) / f"s{size}" / "state.toml"
            started = time.perf_counter()
            seed(state, size)
            seeded = time.perf_counter() - started
            env = environment(state)
            target = f"res{size // 2 - (size // 2) % 3}"  # a VM with a system-assigned identity
            cases = {
                "show (table)": [[*msi, "show", target]],
                "show -o json": [[*msi, "show", target, "-o", "json"]],
                "list resources -o json": [[*msi, "list", "resources", "-o", "json"]],
                "list resources (table)": [[*msi, "list", "resources"]],
                "assign/unassign (mutating)": [
                    [*msi, "assign", target, "--user-assigned", "shared-0", "-o", "none"],
                    [*msi, "unassign", target, "--user-assigned", "shared-0", "-o", "none"],
                ],
            }
            for label, cmds in cases.items():
                med, floor = interleaved(cmds, env, args.rounds)
                rows.append((size, label, f"{med * 1000:.0f}", f"{floor * 1000:.0f}", f"{med / floor:.2f}"))
            print(f"seeded {size} resources in {seeded:.1f} s", file=sys.stderr)
    print(table(rows, ("resources", "command", "median ms", "floor ms", "ratio")))


if __name__ == "__main__":
    main()
