"""Parallel invocations never lose an update: 8 processes at once create 40 objects in total."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import msi_executable

from msi_cli.store import codec
from msi_cli.store.statefile import StateFile

WORKERS = 8
PER_WORKER = 5  # 8 x 5 = 40 objects


def plan(worker: int) -> list[tuple[str, list[str]]]:
    """What one process creates, in order: a mix of resources (some with a system-assigned
    identity) and user-assigned identities."""
    steps = []
    for n in range(PER_WORKER):
        if n % 2 == 0:
            name = f"w{worker}-vm{n}"
            args = ["create-resource", name, "--type", "vm", "-o", "none"]
            if worker % 2 == 0:
                args.append("--system-assigned")
            steps.append((name, args))
        else:
            name = f"w{worker}-id{n}"
            steps.append((name, ["create-identity", name, "-o", "none"]))
    return steps


def run_worker(worker: int, env: dict) -> list[subprocess.CompletedProcess]:
    return [
        subprocess.run([*msi_executable(), *args], capture_output=True, text=True, env=env, timeout=120)
        for _, args in plan(worker)
    ]


def test_eight_processes_create_forty_objects(isolated_state: Path):
    env = dict(os.environ)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = [r for rs in pool.map(lambda w: run_worker(w, env), range(WORKERS)) for r in rs]
    assert len(results) == WORKERS * PER_WORKER
    for r in results:
        assert r.returncode == 0, f"{r.args}: {r.returncode}\n{r.stderr}"
        assert r.stdout == "" and r.stderr == ""

    steps = [step for w in range(WORKERS) for step in plan(w)]
    want_resources = {name for name, args in steps if args[0] == "create-resource"}
    want_identities = {name for name, args in steps if args[0] == "create-identity"}
    want_system = {name for name, args in steps if "--system-assigned" in args}
    assert len(want_resources) + len(want_identities) == 40

    # all 40 are there, as the CLI lists them
    listed = subprocess.run([*msi_executable(), "list", "resources", "-o", "json"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    resources = json.loads(listed.stdout)
    assert sorted(r["name"] for r in resources) == sorted(want_resources)
    assert {r["name"] for r in resources if r["identity"]["type"] == "SystemAssigned"} == want_system
    listed = subprocess.run([*msi_executable(), "list", "identities", "-o", "json"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert sorted(i["name"] for i in json.loads(listed.stdout)) == sorted(want_identities)

    # the file itself (not the parse cache) validates and holds them all
    text = isolated_state.read_text()
    state = codec.load(codec.upgrade(tomllib.loads(text)))
    assert {r.name for r in state.resources.values()} == want_resources
    assert {i.name for i in state.identities.values() if i.kind == "UserAssigned"} == want_identities
    assert len(state.principals) == len(want_identities) + len(want_system)
    assert StateFile(isolated_state).read() == state

    # every certificate's key is there, every create was logged once, nothing half-written is left
    private = isolated_state.parent / (isolated_state.name + ".d")
    thumbprints = {c.thumbprint for sp in state.principals.values() for c in sp.key_credentials}
    assert thumbprints <= {p.stem for p in (private / "keys").iterdir()}
    entries = StateFile(isolated_state).log_entries()
    creates = [e["target"] for e in entries if e["operation"] in ("Create resource", "Create user-assigned identity")]
    assert len(creates) == 40 and len(set(creates)) == 40
    assert [p for p in isolated_state.parent.rglob("*") if p.name.endswith(".tmp")] == []
