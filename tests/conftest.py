"""Shared test harness: every test gets its own state file, plain output and a fixed width."""

from __future__ import annotations

import json
import contextlib
import os
import shutil
import subprocess
import sys
import types
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


@pytest.fixture(scope="session")
def _seeded_templates() -> dict[int, Path]:
    return {}


@pytest.fixture
def seed_state(isolated_state: Path, tmp_path_factory: pytest.TempPathFactory, _seeded_templates: dict[int, Path]):
    """`seed_state(n)`: this test's state seeded with n resources as benchmarks/seed.py seeds them
    (a third with system-assigned identities, a third sharing user-assigned ones), with its parse
    cache. Each size is seeded once per session and copied (a copy costs a tenth of a seeding)."""

    def make(count: int) -> Path:
        template = _seeded_templates.get(count)
        if template is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
            from seed import seed
            from msi_cli.store.statefile import StateFile

            template = tmp_path_factory.mktemp(f"seeded{count}") / "state" / "state.toml"
            seed(template, count)
            StateFile(template).read()
            _seeded_templates[count] = template
        shutil.copytree(template.parent, isolated_state.parent, dirs_exist_ok=True)
        return isolated_state

    return make


# ---- speed of the in-process suite: two costs no test observes ----------------------------------
# RSA-2048 key generation (a tenant's first signing key: about 100 ms each, a third of the suite's
# time) draws from a pool made once per machine; every key is a real, distinct-enough key (the
# certificates around them, and so every kid and thumbprint, are still new each time), and the
# processes of the e2e tests generate their own. fsync (durability after a power cut, which no
# test can see) is skipped in-process; the e2e tests keep it.
_RSA_POOL_SIZE = 12
_rsa_pool: list = []
_rsa_next = [0]


def _pooled_rsa_key(public_exponent: int = 65537, key_size: int = 2048, backend: object = None):
    if public_exponent != 65537 or key_size != 2048:
        return _real_rsa_generate(public_exponent=public_exponent, key_size=key_size)
    if not _rsa_pool:
        _rsa_pool.extend(_load_rsa_pool())
    key = _rsa_pool[_rsa_next[0] % len(_rsa_pool)]
    _rsa_next[0] += 1
    return key


def _load_rsa_pool() -> list:
    from cryptography.hazmat.primitives import serialization

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "msi-cli-tests" / "rsa-pool.pem"
    try:
        blocks = cache.read_bytes().split(b"\n\n")
        keys = [serialization.load_pem_private_key(b, None) for b in blocks if b.strip()]
        if len(keys) == _RSA_POOL_SIZE:
            return keys
    except (OSError, ValueError):
        pass
    keys = [_real_rsa_generate(public_exponent=65537, key_size=2048) for _ in range(_RSA_POOL_SIZE)]
    pem = b"\n".join(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()) for k in keys)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        os.replace(tmp, cache)
    except OSError:
        pass
    return keys


from cryptography.hazmat.primitives.asymmetric import rsa as _rsa  # noqa: E402

_real_rsa_generate = _rsa.generate_private_key


@pytest.fixture(autouse=True)
def _fast_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_rsa, "generate_private_key", _pooled_rsa_key)
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    monkeypatch.setattr(os, "sync", lambda: None)


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


@pytest.fixture(scope="module")
def enough_file_descriptors():
    """For a module whose tests hold a thousand sockets (both ends, when the server runs
    in-process): the soft open-file limit raised, never lowered, and restored after the module."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2400:
        pytest.skip("needs about 2,400 open files")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


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
E2E_MODULES = {"test_e2e", "test_sdk_clients", "test_parallel", "test_serve", "test_serve_abuse_process", "test_tls", "test_arm_az",
               "test_confirm", "test_serve_workers"}
_STARTS_A_PROCESS = ({"subprocess"}, {"Popen"}, {"openpty"}, {"pty", "fork"}, {"msi_executable"})


def _names(code: types.CodeType) -> set[str]:
    """The global and attribute names a function's code uses, its nested functions' included."""
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


def _starts_a_process(item: pytest.Item) -> bool:
    import inspect

    if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    if item.module.__name__.rsplit(".", 1)[-1] in E2E_MODULES:
        return True
    code = getattr(inspect.unwrap(item.function), "__code__", None)  # read the names, not the source: 20x faster
    if code is None:
        return False
    names = _names(code)
    return any(marker <= names for marker in _STARTS_A_PROCESS)


def pytest_configure(config: pytest.Config) -> None:
    """`pytest -m "not e2e"` is the quick loop while editing: the fuzz, property and other
    Hypothesis tests draw fewer examples there (as a Hypothesis "dev" profile would), unless the
    variables are set. The README's test command runs everything with the full counts."""
    if (config.getoption("markexpr", "") or "").replace(" ", "") == "note2e":
        os.environ.setdefault("MSI_FUZZ_EXAMPLES", "100")
        os.environ.setdefault("MSI_PROPERTY_EXAMPLES", "15")
        os.environ.setdefault("MSI_EXAMPLES_SHARE", "4")
    _compile_the_package()


def examples(full: int) -> int:
    """A Hypothesis test's `max_examples`: `full` in the README's run, a share of it (at least 10)
    in the quick loop above (MSI_EXAMPLES_SHARE=4: a quarter)."""
    share = int(os.environ.get("MSI_EXAMPLES_SHARE", "1"))
    return full if share <= 1 else max(10, full // share)


def _compile_the_package() -> None:
    """Byte-compile msi_cli once, as `pip install` does for a regular install: where
    PYTHONDONTWRITEBYTECODE is set (as on some CI machines), each of the ~2,000 `msi` processes the
    tests start would otherwise compile every module it imports from source again."""
    import compileall

    import msi_cli

    with contextlib.suppress(OSError):
        compileall.compile_dir(str(Path(msi_cli.__file__).parent), quiet=2)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and item.get_closest_marker("e2e") is None and _starts_a_process(item):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _in_process_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The marking above reads the names a test's own code uses; a process started through a helper would
    slip past it and slow the in-process suite down unseen. Such a test fails here, naming the fix."""
    if request.node.get_closest_marker("e2e") is not None:
        return
    name = request.node.nodeid

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{name} starts a process, so it is end-to-end: mark it "
                             "@pytest.mark.e2e (or add its module to E2E_MODULES in conftest.py)")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


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
