"""Estates at scale: `msi apply` of N resources with identities and N role assignments (target:
at least 2,000 objects/s at N = 10,000), the idempotent re-apply, `msi apply --what-if` before and
after (the apply rehearsed on a copy of the state) and `msi move-subscription --what-if` on the
applied estate (target for both what-ifs: under 2 s).

    python benchmarks/estate.py [N]            # default 10000
    python benchmarks/estate.py N --phases   # also in-process: parse, plan, apply, save (where the time goes)

Every resource is a VM or web app with a system-assigned identity (each identity is issued a
certificate, as MSRP does); one resource in 20 also holds one of N/100 shared user-assigned
identities; each resource's identity gets one role assignment at its resource group. Objects
counted: resources + role assignments (the issue's measure). The installed `msi` runs each step
as a user would, with one state file in a temporary folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment, msi_command, precompile


def estate(count: int) -> dict:
    shared = max(1, count // 100)
    doc: dict = {
        "subscriptions": [{"name": "bench"}],
        "identities": [{"name": f"shared-{n}", "subscription": "bench", "resource_group": "ids"} for n in range(shared)],
        "resources": [],
        "role_assignments": [],
    }
    for n in range(count):
        group = f"rg{n % 50}"
        rec = {"name": f"res{n}", "type": ("vm", "webapp")[n % 2], "subscription": "bench", "resource_group": group, "system_assigned": True}
        if n % 20 == 0:
            rec["user_assigned"] = [f"shared-{n % shared}"]
        doc["resources"].append(rec)
        doc["role_assignments"].append({"role": "Reader", "scope": f"/subscriptions/bench/resourceGroups/{group}", "resource": f"bench/{group}/res{n}"})
    return doc


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}: {proc.stderr.strip()}")
    return elapsed, proc.stdout


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def phases(count: int) -> None:
    """The same apply in-process, timed by phase (the real key ring: every identity gets its certificate)."""
    from msi_cli.core.estate import apply as applying
    from msi_cli.core.estate import plan as planning
    from msi_cli.core.estate.schema import parse
    from msi_cli.store.statefile import StateFile

    with tempfile.TemporaryDirectory(prefix="msi-bench-estate-") as tmp:
        text = json.dumps(estate(count))
        sf = StateFile(Path(tmp) / "state" / "state.toml")
        t0 = time.perf_counter()
        parsed = parse(text, "estate.json")
        t1 = time.perf_counter()
        with sf.transaction() as ctx:
            t2 = time.perf_counter()
            plan = planning.make(parsed, ctx.state)
            t3 = time.perf_counter()
            applying.apply(ctx, plan)
            t4 = time.perf_counter()
        t5 = time.perf_counter()
        print(f"in-process: parse {t1 - t0:.2f} s, plan {t3 - t2:.2f} s, apply {t4 - t3:.2f} s (of which identities' "
              f"certificates are most), validate and save {t5 - t4:.2f} s")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    if "--phases" in sys.argv:
        phases(count)
    precompile()
    msi = msi_command()
    with tempfile.TemporaryDirectory(prefix="msi-bench-estate-") as tmp:
        path = Path(tmp) / "estate.json"
        path.write_text(json.dumps(estate(count)))
        env = environment(Path(tmp) / "state" / "state.toml")
        objects = 2 * count
        seconds, out = timed([*msi, "apply", str(path), "--what-if", "-o", "json", "--query", "summary"], env)
        print(f"apply --what-if on an empty state ({json.loads(out)}; the apply rehearsed on a copy, no keys made): {seconds:.2f} s")
        seconds, out = timed([*msi, "apply", str(path), "-o", "json", "--query", "summary"], env)
        print(f"apply {count} resources + {count} role assignments ({json.loads(out)}): {seconds:.1f} s, "
              f"{objects / seconds:,.0f} objects/s, peak RSS {peak_rss_mb():,.0f} MB")
        seconds, _ = timed([*msi, "apply", str(path), "-o", "none"], env)
        print(f"re-apply (no changes): {seconds:.2f} s")
        seconds, _ = timed([*msi, "apply", str(path), "--what-if", "-o", "none"], env)
        print(f"apply --what-if on the applied state: {seconds:.2f} s")
        seconds, _ = timed([*msi, "create-tenant", "Fabrikam", "-o", "none"], env)
        seconds, out = timed([*msi, "move-subscription", "bench", "--tenant", "Fabrikam", "--what-if", "-o", "json",
                              "--query", "{deleted: length(deletedRoleAssignments), broken: length(brokenIdentities), fixes: length(fixCommands)}"], env)
        print(f"move-subscription --what-if at {count} resources ({json.loads(out)}): {seconds:.2f} s")


if __name__ == "__main__":
    main()
