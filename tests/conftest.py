"""Shared test harness: every test gets its own state file, plain output and a fixed width."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msi_cli.cli import app, load

load()  # register every command on the app, as `msi --help` does

# Typer's CliRunner rebuilds the whole click command tree on every invoke (~30 ms); the app does
# not change during a test run, so build it once.
import typer.main as _typer_main  # noqa: E402
import typer.testing as _typer_testing  # noqa: E402

_COMMAND = _typer_main.get_command(app)
if hasattr(_typer_testing, "_get_command"):
    _build = _typer_testing._get_command
    _typer_testing._get_command = lambda typer_app: _COMMAND if typer_app is app else _build(typer_app)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state" / "state.toml"
    monkeypatch.setenv("MSI_STATE", str(state))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    for var in ("MSI_OUTPUT", "MSI_QUERY", "MSI_SUBSCRIPTION", "MSI_RESOURCE_GROUP", "MSI_SHELL", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    return state


def is_guid(value: object) -> bool:
    """A canonical, lower-case GUID string."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def fails(result, code: int, *fragments: str) -> str:
    """The command failed with `code`, printed nothing on stdout and exactly one `error:` line
    (no traceback) containing each fragment; returns that line."""
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


class Cli:
    """Runs `msi` in-process through Typer's CliRunner."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        return self.runner.invoke(app, list(args), input=input, prog_name="msi")

    def ok(self, *args: str, input: str | None = None):
        result = self(*args, input=input)
        assert result.exit_code == 0, f"msi {' '.join(args)} -> {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        return result

    def json(self, *args: str):
        return json.loads(self.ok(*args, "-o", "json").stdout)


@pytest.fixture
def cli() -> Cli:
    return Cli()


def msi_executable() -> list[str]:
    """The installed `msi` console script next to this Python, else `python -m msi_cli`."""
    exe = Path(sys.executable).with_name("msi")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("msi")
    return [found] if found else [sys.executable, "-m", "msi_cli"]


@pytest.fixture
def msi_proc(isolated_state: Path):
    """Runs the installed `msi` in a subprocess, as a user would."""

    def run(*args: str, input: str | None = None, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.run(
            [*msi_executable(), *args], input=input, capture_output=True, text=True, env=full_env, timeout=timeout
        )

    return run


# ---- end-to-end marking: `pytest -m "not e2e"` runs the in-process suite alone (a fast loop while
# editing); the README's test command runs everything. A test is end-to-end when it starts a process:
# the installed `msi`, `msi serve`, a shell, a client SDK or a pseudo-terminal.
E2E_FIXTURES = {"msi_proc", "serve", "ep"}
E2E_MODULES = {"test_e2e", "test_sdk_clients", "test_parallel", "test_serve"}
_STARTS_A_PROCESS = ("subprocess.", "Popen", "openpty", "pty.fork", "msi_executable(")


def _starts_a_process(item: pytest.Item) -> bool:
    import inspect

    if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    if item.module.__name__.rsplit(".", 1)[-1] in E2E_MODULES:
        return True
    try:
        source = inspect.getsource(item.function)
    except (OSError, TypeError):
        return False
    return any(marker in source for marker in _STARTS_A_PROCESS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and item.get_closest_marker("e2e") is None and _starts_a_process(item):
            item.add_marker(pytest.mark.e2e)


def stop_process(proc: subprocess.Popen | None) -> None:
    """Stop a served `msi serve` as Ctrl-C would, killing it if it has not gone in 10 s."""
    import signal

    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
