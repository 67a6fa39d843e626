"""Token figures at 1,000 resources: whole `msi token` processes interleaved with the floor
`python -c "import typer"`, and how fast identities are created in bulk (each one gets a key and a
certificate), by processes and in-process through the core.

Targets: a cache-hit token <= 2.0x the floor, a fresh token <= 2.5x.

Then where a fresh token's time goes beyond a cache hit, measured inside `msi token` processes
(each a first token of its identity, as `cli_latency.py` asks): the RS256 signature, the two key
files read and checked (the identity's certificate, which stands for MSRP's client assertion, and
the tenant's signing key), and the rest of the locked transaction; each also as a share of the
floor, to set beside the ratios above.

Usage: python benchmarks/tokens.py [--resources 1000] [--rounds 15] [--identities 50] [--bulk 500]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import FLOOR, copy_state, environment, interleaved, msi_command, precompile, run, table
from seed import seed

CACHE_HIT_TARGET = 2.0
FRESH_TARGET = 2.5


def row(label: str, med: float, floor: float, target: float | None) -> tuple:
    ratio = med / floor
    status = "" if target is None else ("ok" if ratio <= target else "MISSED")
    return (label, f"{med * 1000:.0f}", f"{floor * 1000:.0f}", f"{ratio:.2f}", f"<= {target}" if target else "", status)


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:.0f}/s"


def bulk_in_process(state: Path, count: int, generate_keys: bool) -> float:
    """Seconds to create `count` user-assigned identities in one transaction through the core,
    saving included. Without key generation, a stand-in key ring hands out certificates that were
    never made (run it on a throwaway copy of the state)."""
    from msi_cli.core import lifecycle
    from msi_cli.core.arm import new_guid
    from msi_cli.core.timefmt import iso
    from msi_cli.core.model import KeyCredential
    from msi_cli.store.statefile import StateFile

    class NoKeys:
        def new_identity_certificate(self, app_id: str, start: int, end: int) -> KeyCredential:
            return KeyCredential(new_guid(), (new_guid() + new_guid()).replace("-", "")[:40].upper(), iso(start), iso(end))

        def discard_new(self) -> None:
            pass

    started = time.perf_counter()
    with StateFile(state).transaction() as ctx:
        if not generate_keys:
            ctx.keys = NoKeys()  # type: ignore[assignment]
        for n in range(count):
            lifecycle.create_identity(ctx, f"bulk{n}", "bulk", None, None)
    return time.perf_counter() - started


def key_generation(count: int) -> float:
    from msi_cli import crypto

    started = time.perf_counter()
    for n in range(count):
        crypto.new_ec_certificate(f"app{n}", 0, 90 * 86400)
    return time.perf_counter() - started


# Runs in a fresh process, as `msi token` would: times each step of one mint, printed as JSON.
_MINT_STEPS = r"""
import json, os, sys, time
from pathlib import Path
from msi_cli import purekeys, tokenservice
from msi_cli.core import lookup, tokens
from msi_cli.store.statefile import StateFile

spent = {}
def timed(owner, name, label):
    inner = getattr(owner, name)
    def step(*args, **kwargs):
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - started
    setattr(owner, name, step)

timed(purekeys, "rs256", "RS256 signature")
timed(purekeys, "_read", "key files")  # parsing the two key files and proving each key is its certificate's
timed(tokens, "mint", "mint")
sf = StateFile(Path(os.environ["MSI_STATE"]))
state = sf.read()
resource = lookup.resource(state, sys.argv[1])
started = time.perf_counter()
tokenservice.acquire(sf, resource, "https://management.azure.com/", tokens.Selector(None, None, None), state)
spent["acquire"] = time.perf_counter() - started
print(json.dumps(spent))
"""


def fresh_token_steps(env: dict, names: list[str]) -> dict[str, float]:
    """Median seconds of each step of a fresh token's mint (one process per name)."""
    import json
    import statistics

    runs = [json.loads(subprocess.run([sys.executable, "-c", _MINT_STEPS, name], env=env, check=True,
                                      capture_output=True, text=True).stdout) for name in names]
    steps = {}
    for label in ("RS256 signature", "key files"):
        steps[label] = statistics.median(r.get(label, 0.0) for r in runs)
    steps["the rest of the transaction (lock, state, cache, log, imports)"] = statistics.median(
        r["acquire"] - r.get("RS256 signature", 0.0) - r.get("key files", 0.0) for r in runs)
    steps["the token service's whole work (a cache hit's look-up included)"] = statistics.median(r["acquire"] for r in runs)
    return steps


def attached_identity_id(state: Path, name: str) -> str:
    """The resource id of the user-assigned identity seed() attached to resource `name`."""
    from msi_cli.core import lookup
    from msi_cli.store.statefile import StateFile

    return lookup.resource(StateFile(state).read(), name).user_identity_ids[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--identities", type=int, default=50, help="msi create-identity processes to time")
    parser.add_argument("--bulk", type=int, default=500, help="identities created in-process")
    args = parser.parse_args()
    precompile()
    msi = msi_command()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "s" / "state.toml"
        started = time.perf_counter()
        seed(state, args.resources)
        print(f"seeded {args.resources} resources in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        env = environment(state)
        target = f"res{args.resources // 2 - (args.resources // 2) % 3}"  # a VM with a system-assigned identity
        user_target = f"res{args.resources // 2 - (args.resources // 2) % 3 + 1}"  # a web app with one user-assigned

        # Cache hit: the token was minted once before timing starts.
        hit = [*msi, "token", target, "--audience", "https://vault.azure.net", "-o", "tsv"]
        run(hit, env)
        med, floor = interleaved([hit], env, args.rounds)
        rows.append(row("token, cache hit", med, floor, CACHE_HIT_TARGET))

        # Fresh: every round asks for an audience the cache has not seen (a Key Vault of its own).
        fresh = [[*msi, "token", target, "--audience", f"https://kv{n}.vault.azure.net", "-o", "tsv"] for n in range(args.rounds)]
        med, floor = interleaved(fresh, env, args.rounds)
        rows.append(row("token, fresh (system-assigned)", med, floor, FRESH_TARGET))
        # App Service needs the user-assigned identity selected (no selector means system-assigned).
        selector = ["--msi-res-id", attached_identity_id(state, user_target)]
        fresh = [
            [*msi, "token", user_target, "--audience", f"https://st{n}.blob.core.windows.net", *selector, "-o", "tsv"]
            for n in range(args.rounds)
        ]
        med, floor = interleaved(fresh, env, args.rounds)
        rows.append(row("token, fresh (user-assigned)", med, floor, FRESH_TARGET))

        # Verify, for reference (not a target of the issue).
        token = subprocess.run(hit, env=env, capture_output=True, text=True, check=True).stdout.strip()
        med, floor = interleaved([[*msi, "verify", token, "-o", "none"]], env, args.rounds)
        rows.append(row("verify (reference, no target)", med, floor, None))

        print(table(rows, ("command", "median ms", "floor ms", "ratio", "target", "")))
        print()

        # Where a fresh token's time goes: first tokens of VMs the timings above did not use.
        floor = interleaved([FLOOR], env, args.rounds)[1]
        names = [f"res{3 * n}" for n in range(1, args.rounds + 1)]
        steps = fresh_token_steps(env, names)
        print(table([(label, f"{sec * 1000:.1f}", f"{sec / floor:.3f}x") for label, sec in steps.items()],
                    (f"a fresh token's steps (median of {len(names)} processes)", "ms", f"of the floor ({floor * 1000:.0f} ms)")))
        print()

        # Bulk creation: processes, then in-process with and without key generation.
        started = time.perf_counter()
        for n in range(args.identities):
            run([*msi, "create-identity", f"proc{n}", "-g", "bulk", "-o", "none"], env)
        by_process = time.perf_counter() - started
        started = time.perf_counter()
        for n in range(args.identities):
            run([*msi, "create-resource", f"plain{n}", "--type", "storage", "-g", "bulk", "-o", "none"], env)
        baseline = time.perf_counter() - started
        copies = []
        for name in ("with-keys", "no-keys"):
            copy = Path(tmp) / name / "state.toml"
            copy_state(state, copy)
            copies.append(copy)
        key_generation(5)  # import cryptography before timing the in-process runs
        with_keys = bulk_in_process(copies[0], args.bulk, True)
        without_keys = bulk_in_process(copies[1], args.bulk, False)
        keys_only = key_generation(args.bulk)
        bulk = [
            (f"{args.identities} x msi create-identity (processes)", f"{by_process:.2f}", per_second(args.identities, by_process)),
            (f"{args.identities} x msi create-resource, no identity (baseline)", f"{baseline:.2f}", per_second(args.identities, baseline)),
            (f"{args.bulk} in one transaction (core, with keys)", f"{with_keys:.2f}", per_second(args.bulk, with_keys)),
            (f"{args.bulk} in one transaction (core, no key generation)", f"{without_keys:.2f}", per_second(args.bulk, without_keys)),
            (f"{args.bulk} EC P-256 key + certificate only", f"{keys_only:.2f}", per_second(args.bulk, keys_only)),
        ]
        print(table(bulk, ("created", "seconds", "rate")))


if __name__ == "__main__":
    main()
