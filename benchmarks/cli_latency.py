"""CLI latency as the state grows: whole `msi` processes against states of 1,000 and 10,000
resources (a third with system-assigned identities, a third sharing user-assigned ones), each run
interleaved with the floor `python -c "import typer"` from this environment. Prints each
command's median next to the floor's, the median of each run's ratio to the floor run just
before it (robust to the machine's speed drifting during the benchmark) and the target.

Targets (issue 15): at 10,000 resources `show` and a cache-hit `token` <= 1.5x the floor, a
mutating command <= 2x; at 1,000 every command, `create-identity` included, <= 1.5x.

Usage: python benchmarks/cli_latency.py [--sizes 1000,10000] [--rounds 11] [--only show,token]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import environment, msi_command, paired, precompile, run, table
from seed import seed

AUDIENCE = "https://management.azure.com/"


def cases(msi: list[str], size: int) -> dict[str, tuple[list[list[str]], bool]]:
    """label -> (commands run in turn, whether it writes the state)."""
    vm = f"res{size // 2 - (size // 2) % 3}"  # a VM with a system-assigned identity
    web = f"res{size // 2 - (size // 2) % 3 + 1}"  # a web app with a user-assigned identity
    every = size <= 1000  # at 10,000 the targets name show, token and a mutating command
    found: dict[str, tuple[list[list[str]], bool]] = {
        "show (table)": ([[*msi, "show", vm]], False),
        "show -o json": ([[*msi, "show", vm, "-o", "json"]], False),
        "token (cache hit)": ([[*msi, "token", vm, "--audience", AUDIENCE, "-o", "none"]], False),
        "assign/unassign": ([
            [*msi, "assign", vm, "--user-assigned", "shared-0", "-o", "none"],
            [*msi, "unassign", vm, "--user-assigned", "shared-0", "-o", "none"],
        ], True),
        "create-identity/delete": ([
            [*msi, "create-identity", "bench-id", "-g", "rg1", "-o", "none"],
            [*msi, "delete", "bench-id", "--yes", "-o", "none"],
        ], True),
        "list resources -o json": ([[*msi, "list", "resources", "-o", "json"]], False),
    }
    if every:
        found.update({
            "list resources (table)": ([[*msi, "list", "resources"]], False),
            "list identities -o json": ([[*msi, "list", "identities", "-o", "json"]], False),
            "list principals -o json": ([[*msi, "list", "principals", "-o", "json"]], False),
            "token (fresh)": ([[*msi, "token", f"res{3 * n}", "--audience", AUDIENCE, "-o", "none"] for n in range(64)], True),
            "jwks": ([[*msi, "jwks"]], False),
            "check-access": ([[*msi, "check-access", vm, "--role", "Reader", "--scope", vm]], False),
            "grant/revoke": ([
                [*msi, "grant", vm, "--role", "Reader", "--scope", web, "-o", "none"],
                [*msi, "revoke", vm, "--role", "Reader", "--scope", web, "-o", "none"],
            ], True),
            "create-resource/delete": ([
                [*msi, "create-resource", "benchvm", "--type", "vm", "-g", "rg1", "--system-assigned", "-o", "none"],
                [*msi, "delete", "benchvm", "--yes", "-o", "none"],
            ], True),
            "log --last 20": ([[*msi, "log", "--last", "20"]], False),
            "clock show": ([[*msi, "clock", "show"]], False),
        })
    return found


def target(size: int, label: str, writes: bool) -> float | None:
    if size <= 1000:
        return 1.5
    if label.startswith(("show", "token (cache")):
        return 1.5
    return 2.0 if writes else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--only", default="", help="comma-separated label prefixes")
    args = parser.parse_args()
    precompile()
    msi = msi_command()
    only = [p for p in args.only.split(",") if p]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            state = Path(tmp) / f"s{size}" / "state.toml"
            started = time.perf_counter()
            seed(state, size)
            print(f"seeded {size} resources in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            env = environment(state)
            vm = f"res{size // 2 - (size // 2) % 3}"
            run([*msi, "token", vm, "--audience", AUDIENCE, "-o", "none"], env)  # the cache's first entry
            run([*msi, "grant", vm, "--role", "Reader", "--scope", vm, "-o", "none"], env)  # check-access: allowed
            for label, (cmds, writes) in cases(msi, size).items():
                if only and not label.startswith(tuple(only)):
                    continue
                med, floor, ratio = paired(cmds, env, max(args.rounds, len(cmds)) if len(cmds) < 8 else args.rounds)
                goal = target(size, label, writes)
                verdict = "" if goal is None else ("ok" if ratio <= goal else "OVER")
                rows.append((f"{size:,}", label, f"{med * 1000:.0f}", f"{floor * 1000:.0f}", f"{ratio:.2f}",
                             "" if goal is None else f"<= {goal}", verdict))
                print(f"  {size:,} {label}: {med * 1000:.0f} ms, floor {floor * 1000:.0f} ms, {ratio:.2f}x", file=sys.stderr)
    print(table(rows, ("resources", "command", "median ms", "floor ms", "ratio", "target", "")))


if __name__ == "__main__":
    main()
