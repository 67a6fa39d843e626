"""The README works as written: its example blocks run in order, in one fresh bash, with the
installed `msi` on PATH and a state of their own, and do what the text around them says.

A block is an example when an HTML comment precedes its fence: `<!-- example -->` (run in order
with the others) or `<!-- example: install -->` (Quick start: installs from a copy of this
checkout). A line whose comment starts with `# fails` must fail (it is run as `! ( line )`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, msi_executable
from msi_cli.store.statefile import StateFile

README = REPO / "README.md"
BLOCK = re.compile(r"<!-- example(?:: (?P<name>[\w-]+))? -->\n```sh\n(?P<body>.*?)```", re.S)
FAILS = re.compile(r"^(?P<cmd>[^#\n]*\S)\s+# fails\b.*$", re.M)

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def examples(name: str | None = None) -> list[str]:
    return [m["body"] for m in BLOCK.finditer(README.read_text(encoding="utf-8")) if m["name"] == name]


def as_script(blocks: list[str]) -> str:
    """One bash script: stop at the first failure, expected failures inverted, and every
    background job (msi serve) stopped on the way out."""
    body = "\n".join(FAILS.sub(lambda m: f"! ( {m['cmd']} )", block) for block in blocks)
    return "set -eo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + body


def fresh_env(home: Path, state: Path, bin_dir: Path) -> dict[str, str]:
    """What a new terminal has: a PATH with msi on it, a HOME, and nothing of msi's or Azure's."""
    return {
        "PATH": f"{bin_dir}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "MSI_STATE": str(state),
        "NO_COLOR": "1",
        "COLUMNS": "120",
        "LANG": "C.UTF-8",
    }


def test_the_readme_marks_its_examples():
    names = [m["name"] for m in BLOCK.finditer(README.read_text(encoding="utf-8"))]
    assert names.count("install") == 1
    assert names.count(None) >= 5
    script = as_script(examples())
    assert "! ( msi token vm1 --audience https://vault.azure.net )" in script  # the refusal the text announces


def test_readme_examples_run_in_order_in_a_fresh_shell(tmp_path, isolated_state):
    pytest.importorskip("azure.identity")
    exe = msi_executable()
    if len(exe) != 1:
        pytest.skip("needs the installed msi console script")
    bin_dir = Path(exe[0]).parent  # msi, and the python that has azure-identity
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(["bash", "-c", as_script(examples())], cwd=work, env=fresh_env(home, isolated_state, bin_dir),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    # what the text says happened
    assert "Identity not found" in proc.stderr  # `msi token vm1` after shared-id was deleted
    assert "dangling" in proc.stderr  # `msi delete shared-id` warned about vm1 and vm2
    printed = proc.stdout.split()
    assert sum(word.isdigit() and int(word) > 1_000_000_000 for word in printed) >= 2  # expires_on, twice (IMDS, workload)
    state = StateFile(isolated_state).read()
    vm1 = next(r for r in state.resources.values() if r.name == "vm1")
    assert vm1.user_assigned == [] and vm1.system_principal_id is not None
    vm2 = next(r for r in state.resources.values() if r.name == "vm2")
    assert len(vm2.user_assigned) == 1  # still dangling: only vm1's entry was removed
    assert not (isolated_state.parent / (isolated_state.name + ".d") / "server.json").exists() or _server_gone(isolated_state)
    export = tmp_path / "work" / "fixture.json"
    assert export.stat().st_mode & 0o777 == 0o600
    assert json.loads(export.read_text())["keys"]


def _server_gone(state: Path) -> bool:
    from msi_cli.server import runfile

    return runfile.running(StateFile(state).server_path) is None


def test_quick_start_installs_msi_on_the_path(tmp_path):
    """The Quick start block, run as written in a copy of this checkout: `msi` is on PATH."""
    copy = tmp_path / "msi-cli"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "__pycache__", ".pytest_cache", "build"))
    home = tmp_path / "home"
    home.mkdir()
    env = fresh_env(home, tmp_path / "state" / "state.toml", Path(sys.executable).parent)
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # no msi before the install
    env.update({k: v for k, v in os.environ.items() if k.startswith(("PIP_", "UV_"))})  # the package index, if configured
    python = shutil.which("python3", path=env["PATH"])
    if python is None:
        pytest.skip("no python3 on the system PATH")
    script = examples("install")[0] + "\ncommand -v msi\n"
    proc = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script], cwd=copy, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip().splitlines()[-1] == str(copy / ".venv" / "bin" / "msi")
    assert "lifecycle: system-assigned vs user-assigned identities" in proc.stdout  # the demo ran,
    assert any(line.strip("─ ") == "done" for line in proc.stdout.splitlines())  # to its end
