"""Fuzzing (issue 10): random mutations of a real state file (bytes, types, structure, dates,
numbers) and random argument lists. Every run must end with a documented exit code (0, 1, 2, 3),
no traceback (and no "internal error" from the last-resort boundary), one `error:` line when it
fails, and the state file's bytes unchanged when it fails.

Seeded, so a failure can be replayed: the message names the seed and the example. By default a few
hundred examples in-process (CliRunner) plus a small sample through the installed `msi`;
MSI_FUZZ_EXAMPLES=N runs N of each kind (e.g. 5000), MSI_FUZZ_SEED=S changes the seed.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Cli, msi_executable

EXAMPLES = int(os.environ.get("MSI_FUZZ_EXAMPLES", "400"))
SEED = int(os.environ.get("MSI_FUZZ_SEED", "20261129"))
SUBPROCESS_SAMPLE = max(4, EXAMPLES // 25)

# Commands that read the state, and commands that write it.
STATE_COMMANDS = [
    ("list", "resources"),
    ("show", "vm1", "-o", "json"),
    ("list", "principals", "-o", "tsv"),
    ("token", "vm1", "--audience", "https://vault.azure.net"),
    ("token", "web1", "--audience", "https://storage.azure.com", "-o", "json"),
    ("create-identity", "fz1"),
    ("create-resource", "fzvm", "--type", "vm", "--system-assigned"),
    ("assign", "web1", "--user-assigned", "id1"),
    ("jwks",),
    ("clock", "advance", "50d"),
    ("log", "--last", "3"),
    ("check-access", "vm1", "--scope", "/subscriptions/x", "--role", "Reader"),
    ("delete", "id1", "--yes"),
]

VALUES = [
    "0", "-1", "1", "9223372036854775807", "-9223372036854775808", "18446744073709551616", "1.5", "inf", "-inf", "nan",
    "true", "false", "[]", "{}", "[1, 'a']", '""', '"x"', '"\\u001b[2J"', '"\\u009b"', '"\\u202e"', '"\\udcff"',
    "1979-05-27T07:32:00Z", "1979-05-27", '"2027-02-30T00:00:00Z"', '"2026-02-29T00:00:00Z"', '"2026-13-01T00:00:00Z"',
    '"2026-01-01T24:00:00Z"', '"0001-01-01T00:00:00Z"', '"9999-12-31T23:59:59Z"', '"1969-12-31T23:59:59Z"',
    '"00000000-0000-0000-0000-000000000000"', '"ABCDEF00-0000-0000-0000-000000000000"', '"' + "a" * 3000 + '"',
    "[" * 600 + "]" * 600, "{a = " * 300 + "1" + "}" * 300, '"/subscriptions/x/resourceGroups/\\u0007"',
]

ARG_VALUES = [
    "vm1", "web1", "id1", "vm", "webapp", "default", "eastus", "Reader", "https://vault.azure.net", "", " ", "-1", "0",
    "99999999999999999999", "1e999", "nan", "5d", "-5d", "1h30m", "2027-02-30T00:00:00Z", "not-a-time", "/subscriptions/x",
    "/subscriptions/00000000-0000-0000-0000-000000000000", "/", "../../etc/passwd", "x" * 300, "\x1b[31m", "a\x00b",
    "\u202e", os.fsdecode(b"\xff"), os.fsdecode(b"ok\xed\xa0\x80"), "-", "--", "@", "[]", "{}",
]

QUERIES = [
    "[].name", "[?name=='vm1']", "{n: name, t: `1`}", "max_by(@, &name)", "sort_by(@, &location)", "[?location > `1`]",
    "merge(@)", "merge(@, `1`)", "length(@) > 'x'", "min(@)", "sort([`1`, 'a'])", "keys(@)", "abs(`-1e400`)", "`1e400`",
    "map(&to_number(name), @)", "sum([`1e308`, `1e308`])", "avg(`[]`)", "ceil(`1e400`)", "'\udcff'", "`\"\\ud800\"`",
    "[" * 3000, "a|" * 3000 + "a", "!" * 3000 + "a", "to_number('1e999')", "'\x1b[2J'", "type(@)", "[0].identity.*",
]


def _argument_lists(rng: random.Random) -> list[str]:
    v = lambda: rng.choice(ARG_VALUES)  # noqa: E731
    q = lambda: rng.choice(QUERIES)  # noqa: E731
    fmt = lambda: rng.choice(["json", "tsv", "table", "none", "yaml", "JSON"])  # noqa: E731
    templates = [
        lambda: ["show", v()],
        lambda: ["token", "vm1", "--audience", v()],
        lambda: ["token", v(), "--audience", "https://vault.azure.net", rng.choice(["--client-id", "--object-id", "--msi-res-id"]), v()],
        lambda: ["list", rng.choice(["resources", "identities", "principals", "tenants", "subscriptions", "role-assignments", v()]),
                 "--query", q(), "-o", fmt()],
        lambda: ["show", "vm1", "--query", q(), "-o", fmt()],
        lambda: ["clock", "advance", rng.choice(["1d", "-5d", "45d", "1h30m", "x", "", "5"])],
        lambda: ["create-tenant", v()],
        lambda: ["create-subscription", v(), "--tenant", v()],
        lambda: ["create-identity", v(), "-g", v(), "-l", v()],
        lambda: ["create-resource", v(), "--type", v(), "--user-assigned", v()],
        lambda: ["grant", "vm1", "--role", v(), "--scope", v()],
        lambda: ["check-access", "vm1", "--scope", v(), "--role", v()],
        lambda: ["verify", v()],
        lambda: ["log", "--last", v()],
        lambda: ["log", "--query", q(), "-o", fmt()],
        lambda: ["migrate", "vm1", "--subscription", v(), "-g", v()],
        lambda: ["assign", "vm1", "--user-assigned", v()],
        lambda: ["unassign", v(), "--system-assigned"],
        lambda: ["delete", v(), "--yes"],
        lambda: ["jwks", "--tenant", v(), "-o", fmt(), "--query", q()],
        lambda: ["env", v()],
        lambda: ["move-subscription", v(), "--tenant", v(), "--yes"],
    ]
    args = rng.choice(templates)()
    for _ in range(rng.choice([0, 0, 0, 1, 2])):  # now and then, stray options and values
        args.insert(rng.randrange(len(args) + 1), rng.choice(["-o", "--query", "-g", "--yes", "--type", v(), "--state"]))
    return args


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    text = raw.decode("utf-8")
    lines = text.splitlines(keepends=True)
    kind = rng.randrange(9)
    if kind == 0:  # flip bytes
        data = bytearray(raw)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 1:  # a value of another type or out of its domain
        candidates = [n for n, line in enumerate(lines) if " = " in line]
        n = rng.choice(candidates)
        lines[n] = lines[n].split(" = ", 1)[0] + " = " + rng.choice(VALUES) + "\n"
        return "".join(lines).encode("utf-8", "surrogatepass")
    if kind == 2:  # drop lines
        for _ in range(rng.randint(1, 3)):
            del lines[rng.randrange(len(lines))]
        return "".join(lines).encode("utf-8")
    if kind == 3:  # duplicate or move lines (duplicate keys, tables, records)
        n = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines)), lines[n])
        return "".join(lines).encode("utf-8")
    if kind == 4:  # dates that pass a format check
        return re.sub(
            r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"',
            lambda m: rng.choice(VALUES[21:30]) if rng.random() < 0.3 else m.group(0), text,
        ).encode("utf-8")
    if kind == 5:  # numbers at the edges
        return re.sub(r"clock_offset = -?\d+", "clock_offset = " + rng.choice(VALUES[:10]), text).encode("utf-8")
    if kind == 6:  # ids of another shape
        return re.sub(
            r'"([0-9a-f-]{36})"',
            lambda m: rng.choice([f'"{m.group(1).upper()}"', "1", '"x"', "[]"]) if rng.random() < 0.15 else m.group(0), text,
        ).encode("utf-8")
    if kind == 7:  # truncation
        return raw[: rng.randrange(len(raw))]
    # nesting deep enough to exhaust recursion
    depth = rng.choice([200, 1000, 20000])
    return raw + b"\nzz = " + b"[" * depth + b"]" * depth + b"\n"


def _check(label: str, code: int, stdout: str, stderr: str, before: bytes, after: bytes | None) -> None:
    assert code in (0, 1, 2, 3), f"{label}: exit {code}\n{stderr}"
    assert "Traceback" not in stderr and "internal error" not in stderr, f"{label}:\n{stderr}"
    if code != 0:
        errors = [line for line in stderr.splitlines() if not line.startswith("warning: ")]
        assert len(errors) == 1 and errors[0].startswith("error: "), f"{label}:\n{stderr}"
        assert after == before, f"{label}: refused (exit {code}) but the state file changed\n{stderr}"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A real state: a tenant, identities, resources of both token hosts, a role assignment, a
    minted token and a log."""
    state = tmp_path_factory.mktemp("fuzz") / "state" / "state.toml"
    old = os.environ.get("MSI_STATE")
    os.environ["MSI_STATE"] = str(state)
    try:
        cli = Cli()
        cli.ok("create-tenant", "Contoso")
        cli.ok("create-identity", "id1")
        cli.ok("create-resource", "vm1", "--type", "vm", "--system-assigned", "--user-assigned", "id1")
        cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned")
        sub = cli.json("show", "vm1")["subscriptionId"]
        cli.ok("grant", "vm1", "--role", "Reader", "--scope", f"/subscriptions/{sub}")
        cli.ok("token", "vm1", "--audience", "https://vault.azure.net")
    finally:
        if old is None:
            del os.environ["MSI_STATE"]
        else:
            os.environ["MSI_STATE"] = old
    return state


def _fresh_copy(template: Path, isolated_state: Path) -> Path:
    if isolated_state.parent.exists():
        shutil.rmtree(isolated_state.parent)
    shutil.copytree(template.parent, isolated_state.parent)
    return isolated_state


def test_mutated_state_files(cli, template, isolated_state):
    rng = random.Random(SEED)
    original = template.read_bytes()
    for n in range(EXAMPLES):
        state = _fresh_copy(template, isolated_state)
        state.write_bytes(_mutate(rng, original))
        for args in rng.sample(STATE_COMMANDS, 2):
            before = state.read_bytes()
            result = cli(*args)
            label = f"seed {SEED} example {n}: msi {' '.join(args)}"
            assert result.exception is None or isinstance(result.exception, SystemExit), f"{label}: {result.exception!r}"
            _check(label, result.exit_code, result.stdout, result.stderr, before, state.read_bytes() if state.exists() else None)


def test_random_argument_lists(cli, template, isolated_state):
    rng = random.Random(SEED + 1)
    state = _fresh_copy(template, isolated_state)
    for n in range(EXAMPLES * 2):
        if n % 40 == 0:
            state = _fresh_copy(template, isolated_state)
        args = _argument_lists(rng)
        if "--state" in args:
            args.remove("--state")
        before = state.read_bytes()
        result = cli(*args)
        label = f"seed {SEED + 1} example {n}: msi {args!r}"
        assert result.exception is None or isinstance(result.exception, SystemExit), f"{label}: {result.exception!r}"
        _check(label, result.exit_code, result.stdout, result.stderr, before, state.read_bytes())


def test_a_sample_through_the_installed_msi(template, isolated_state):
    """The same checks on the real console script (its own stdout encoding, argv bytes, exit)."""
    rng = random.Random(SEED + 2)
    original = template.read_bytes()
    env = {**os.environ, "MSI_STATE": str(isolated_state)}
    for n in range(SUBPROCESS_SAMPLE):
        state = _fresh_copy(template, isolated_state)
        if n % 2 == 0:
            state.write_bytes(_mutate(rng, original))
            args = list(rng.choice(STATE_COMMANDS))
        else:
            args = [a for a in _argument_lists(rng) if a != "--state" and "\x00" not in a]  # argv cannot hold NUL
        before = state.read_bytes()
        proc = subprocess.run([*msi_executable(), *args], capture_output=True, env=env, timeout=60)
        stdout, stderr = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        _check(f"seed {SEED + 2} example {n}: msi {args!r}", proc.returncode, stdout, stderr, before, state.read_bytes())
        assert b"\x1b" not in proc.stderr, stderr


PRIVATE_COMMANDS = [
    ("token", "vm1", "--audience", "https://vault.azure.net"),
    ("token", "vm1", "--audience", "https://storage.azure.com"),
    ("jwks",),
    ("log",),
    ("log", "--last", "2"),
    ("show", "vm1"),
    ("create-identity", "fz2"),
]


def _damage(rng: random.Random, data: bytes, name: str) -> bytes:
    kind = rng.randrange(4)
    if kind == 0 and data:  # flipped bytes
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    if kind == 1:  # torn
        return data[: rng.randrange(len(data) + 1)]
    if kind == 2 and name == "tokens.json":  # entries of another shape
        import json

        entries = json.loads(data)
        for entry in entries.values():
            entry[rng.choice(list(entry))] = rng.choice([None, 1, "x", "-1", "99999999999999999999", [], {}])
        return json.dumps(entries).encode()
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))  # garbage


def test_damaged_private_files(cli, template, isolated_state):
    """A damaged key file, cache, token cache or log line: one error line or a warning, never a
    traceback, and a failed command leaves the state file as it was."""
    rng = random.Random(SEED + 3)
    for n in range(max(20, EXAMPLES // 4)):
        state = _fresh_copy(template, isolated_state)
        victims = sorted(p for p in private_path(state).rglob("*") if p.is_file())
        victim = rng.choice(victims)
        victim.write_bytes(_damage(rng, victim.read_bytes(), victim.name))
        for args in rng.sample(PRIVATE_COMMANDS, 3):
            before = state.read_bytes()
            result = cli(*args)
            label = f"seed {SEED + 3} example {n}: {victim.name} damaged, msi {' '.join(args)}"
            assert result.exception is None or isinstance(result.exception, SystemExit), f"{label}: {result.exception!r}"
            _check(label, result.exit_code, result.stdout, result.stderr, before, state.read_bytes())


def private_path(state: Path) -> Path:
    return state.parent / (state.name + ".d")
