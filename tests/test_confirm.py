"""Destructive commands ask on a terminal, go on with --yes, and refuse without either; --version."""

from __future__ import annotations

import contextlib
import io
import os
import select
import subprocess
import sys
import time

import pytest

from conftest import msi_executable
from msi_cli import __version__
from msi_cli.cli import confirm
from msi_cli.errors import InvalidArgument, MsiError


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def web1(cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned", "-o", "none")
    return cli


def names(cli) -> list[str]:
    return cli.json("list", "resources", "--query", "[].name")


# ---- confirm_or_refuse itself ---------------------------------------------------------------------


def test_yes_goes_on_without_asking(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", FakeTerminal(""))
    confirm.confirm_or_refuse("Delete it?", yes=True)
    assert capsys.readouterr().err == ""


def test_no_terminal_refuses_with_a_hint(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # input, but not a terminal
    with pytest.raises(InvalidArgument) as info:
        confirm.confirm_or_refuse("Delete it?", yes=False)
    assert info.value.exit_code == 2
    assert "--yes" in info.value.hint


@pytest.mark.parametrize("answer", ["y\n", "yes\n", "Y\n"])
def test_terminal_yes_goes_on(monkeypatch, capsys, answer):
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answer))
    confirm.confirm_or_refuse("Delete it?", yes=False)
    captured = capsys.readouterr()
    assert "Delete it? [y/N]" in captured.err  # the question goes to stderr, never stdout
    assert captured.out == ""


@pytest.mark.parametrize("answer", ["n\n", "\n", "no\n"])
def test_terminal_no_or_enter_cancels(monkeypatch, answer):
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answer))
    with pytest.raises(MsiError) as info:
        confirm.confirm_or_refuse("Delete it?", yes=False)
    assert info.value.exit_code == 1
    assert "cancelled" in info.value.message


def test_terminal_asks_again_until_answered_and_end_of_input_cancels(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", FakeTerminal("maybe\ny\n"))
    confirm.confirm_or_refuse("Delete it?", yes=False)
    err = capsys.readouterr().err
    assert err.count("Delete it? [y/N]") == 2 and "Please answer y or n." in err
    monkeypatch.setattr(sys, "stdin", FakeTerminal(""))
    with pytest.raises(MsiError):
        confirm.confirm_or_refuse("Delete it?", yes=False)


# ---- through the CLI ------------------------------------------------------------------------------


def test_delete_without_terminal_and_without_yes_refuses(web1):
    result = web1("delete", "web1")  # CliRunner's stdin is not a terminal
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: Delete /subscriptions/")
    assert "refused without confirmation" in result.stderr and "pass --yes" in result.stderr
    assert result.stderr.count("\n") == 1
    assert names(web1) == ["web1"]


def test_delete_with_yes_or_y_proceeds(web1):
    web1.ok("delete", "web1", "--yes", "-o", "none")
    assert names(web1) == []
    web1.ok("create-identity", "shared-id", "-o", "none")
    web1.ok("delete", "shared-id", "-y", "-o", "none")
    assert web1.json("list", "identities") == []


def test_delete_on_a_terminal_asks(web1, monkeypatch):
    # CliRunner swaps in its own sys.stdin for each run: make that stream a terminal
    import typer.testing

    real_isolation = typer.testing.CliRunner.isolation

    @contextlib.contextmanager
    def isolation(self, *args, **kwargs):
        with real_isolation(self, *args, **kwargs) as streams:
            sys.stdin.isatty = lambda: True
            yield streams

    monkeypatch.setattr(typer.testing.CliRunner, "isolation", isolation)
    result = web1("delete", "web1", "-o", "none", input="n\n")
    assert result.exit_code == 1
    assert "Delete /subscriptions/" in result.stderr and "[y/N]" in result.stderr
    assert "error: cancelled: nothing was changed" in result.stderr
    assert names(web1) == ["web1"]

    result = web1("delete", "web1", "-o", "none", input="y\n")
    assert result.exit_code == 0, result.stderr
    assert names(web1) == []


def test_move_subscription_refuses_without_yes_and_moves_with_it(cli):
    cli.ok("create-tenant", "Fabrikam", "-o", "none")
    cli.ok("create-subscription", "prod", "-o", "none")
    result = cli("move-subscription", "prod", "--tenant", "Fabrikam")
    assert result.exit_code == 2
    assert "refused without confirmation" in result.stderr and "pass --yes" in result.stderr
    fabrikam = [t for t in cli.json("list", "tenants") if t["displayName"] == "Fabrikam"][0]
    assert all(s["tenantId"] != fabrikam["tenantId"] for s in cli.json("list", "subscriptions") if s["name"] == "prod")
    cli.ok("move-subscription", "prod", "--tenant", "Fabrikam", "--yes", "-o", "none")
    assert [s["tenantId"] for s in cli.json("list", "subscriptions") if s["name"] == "prod"] == [fabrikam["tenantId"]]


# ---- a real terminal: the installed msi with a pseudo-terminal as stdin --------------------------


def _run_on_pty(args: list[str], answer: bytes, env: dict) -> tuple[int, str, str]:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([*msi_executable(), *args], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    # wait for the question, then answer it as a person would
    deadline = time.time() + 60
    err = b""
    while time.time() < deadline and b"[y/N]" not in err:
        ready, _, _ = select.select([proc.stderr], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            err += chunk
    os.write(master, answer)
    rest_out, rest_err = proc.communicate(timeout=60)
    os.close(master)
    return proc.returncode, rest_out.decode(), (err + rest_err).decode()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize(("answer", "code", "left"), [(b"n\n", 1, ["web1"]), (b"y\n", 0, [])])
def test_delete_on_a_real_terminal(web1, isolated_state, answer, code, left):
    env = dict(os.environ, MSI_STATE=str(isolated_state))
    returncode, out, err = _run_on_pty(["delete", "web1", "-o", "json"], answer, env)
    assert "Delete /subscriptions/" in err and "[y/N]" in err
    assert returncode == code, err
    assert names(web1) == left
    if code == 0:
        assert out.startswith("{")  # the question and answer stay off stdout
    else:
        assert out == "" and "error: cancelled: nothing was changed" in err


# ---- --version ------------------------------------------------------------------------------------


def test_version(cli):
    result = cli.ok("--version")
    assert result.stdout == f"msi {__version__}\n"
    assert result.stderr == ""


def test_version_installed(msi_proc):
    proc = msi_proc("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"msi {__version__}\n"


@pytest.mark.e2e
def test_version_builds_no_command():
    """`msi --version` prints without importing any command module: it was the slowest call of
    all, building every command's parameters for an option that needs none."""
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print(sorted(m for m in sys.modules if m.startswith('msi_cli.cli.')"
            " and m.rsplit('.', 1)[1] in set(__import__('msi_cli.cli').cli.COMMAND_MODULES.values()))))\n"
            "sys.argv = ['msi', '--version']\n"
            "from msi_cli.cli import main\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines() == [f"msi {__version__}", "[]"], proc.stderr
