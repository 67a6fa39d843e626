"""Seed a state file with N resources (a third with system-assigned identities, a third sharing
user-assigned identities) through the real core and store, as many CLI calls would leave it."""

from __future__ import annotations

import sys
from pathlib import Path

from msi_cli.core import lifecycle
from msi_cli.store.statefile import StateFile


def seed(path: Path, count: int) -> None:
    sf = StateFile(path)
    with sf.transaction() as ctx:
        shared = [lifecycle.create_identity(ctx, f"shared-{n}", "rg0", None, None) for n in range(max(1, count // 50))]
        for n in range(count):
            kind = ("vm", "webapp", "storage")[n % 3]
            name = f"res{n}"
            users = [shared[n % len(shared)].resource_id] if n % 3 == 1 else []
            lifecycle.create_resource(ctx, name, kind, f"rg{n % 10}", None, None, system_assigned=n % 3 == 0, user_assigned=users)


if __name__ == "__main__":
    seed(Path(sys.argv[1]), int(sys.argv[2]))
