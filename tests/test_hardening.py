"""Issue 10, hardening: each hostile input gets one `error:` line and a documented exit code, and
leaves the state's bytes as they were. Every check runs the installed `msi` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from conftest import msi_executable

NOBODY = 65534
IS_ROOT = os.geteuid() == 0
SETPRIV = shutil.which("setpriv")


# ---- helpers ---------------------------------------------------------------------------------------


def one_error(proc: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """Exit `code`, nothing on stdout, exactly one `error:` line with each fragment, no traceback."""
    assert proc.returncode == code, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for folders and links)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(folder.rglob("*")):
        out[str(p.relative_to(folder))] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return out


def private(state: Path) -> Path:
    return state.parent / (state.name + ".d")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A state with a resource holding a system-assigned and a user-assigned identity, and one
    token minted (so the private folder holds keys, caches, the token cache and the log), made
    once by the installed msi."""
    state = tmp_path_factory.mktemp("template") / "state" / "state.toml"
    env = {**os.environ, "MSI_STATE": str(state)}
    for args in (
        ("create-identity", "id1"),
        ("create-resource", "vm1", "--type", "vm", "--system-assigned", "--user-assigned", "id1"),
        ("token", "vm1", "--audience", "https://vault.azure.net", "-o", "none"),
    ):
        proc = subprocess.run([*msi_executable(), *args], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
    return state


@pytest.fixture
def seeded(template: Path, isolated_state: Path) -> Path:
    """A copy of the template state at this test's state path."""
    shutil.copytree(template.parent, isolated_state.parent)
    return isolated_state


def signing_key_file(state: Path) -> Path:
    """The key file of the default tenant's current signing key (named by its kid)."""
    from msi_cli.core import credentials, lookup
    from msi_cli.core.timefmt import iso, real_now
    from msi_cli.store.statefile import StateFile

    loaded = StateFile(state).read()
    tenant = lookup.tenant_of(loaded, loaded.default_subscription_id)
    key = credentials.current_key(tenant, iso(real_now() + loaded.clock_offset))
    assert key is not None
    return private(state) / "keys" / f"{key.kid}.pem"


# ---- 1. a planted private folder -----------------------------------------------------------------


@pytest.mark.skipif(not IS_ROOT, reason="chown to another uid needs root")
@pytest.mark.parametrize("planted", ["state.toml.d", "state.toml.d/keys"])
def test_a_private_folder_another_user_created_first_is_refused(msi_proc, isolated_state, planted):
    private(isolated_state).mkdir(mode=0o700, parents=True)
    folder = isolated_state.parent / planted
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chown(folder, NOBODY, NOBODY)
    folder.chmod(0o777)
    one_error(msi_proc("create-identity", "id1"), 1, f"{folder} belongs to another user (uid {NOBODY})")
    assert not isolated_state.exists()
    assert list(folder.iterdir()) == []  # no key was written into it


@pytest.mark.skipif(not IS_ROOT, reason="chown to another uid needs root")
@pytest.mark.parametrize("name", ["lock", "cache", "tokens.json", "activity.jsonl", "signing key"])
def test_a_private_file_owned_by_another_user_is_refused(msi_proc, seeded, name):
    path = signing_key_file(seeded) if name == "signing key" else private(seeded) / name
    os.chown(path, NOBODY, NOBODY)
    before = seeded.read_bytes()
    args = {"activity.jsonl": ("log",), "signing key": ("jwks",), "lock": ("create-identity", "id2")}.get(
        name, ("token", "vm1", "--audience", "https://vault.azure.net"))
    one_error(msi_proc(*args), 1, str(path), "belongs to another user")
    assert seeded.read_bytes() == before


def test_a_private_folder_others_can_write_is_refused(msi_proc, seeded):
    folder = private(seeded) / "keys"
    folder.chmod(0o777)
    before = snapshot(seeded.parent)
    one_error(msi_proc("create-identity", "id2"), 1, str(folder), "can be written by other users")
    assert snapshot(seeded.parent) == before


@pytest.mark.parametrize("what", ["state.toml.d", "keys", "signing key", "lock", "cache"])
def test_msi_never_follows_a_symlink_in_its_private_folder(msi_proc, seeded, tmp_path, what):
    elsewhere = tmp_path / "elsewhere"
    if what == "state.toml.d":
        link = private(seeded)
    elif what == "keys":
        link = private(seeded) / "keys"
    elif what == "signing key":
        link = signing_key_file(seeded)
    else:
        link = private(seeded) / what
    if link.is_dir():
        shutil.copytree(link, elsewhere)
        shutil.rmtree(link)
    else:
        shutil.copy2(link, elsewhere)
        link.unlink()
    link.symlink_to(elsewhere)
    before = snapshot(seeded.parent)
    target_before = snapshot(elsewhere) if elsewhere.is_dir() else elsewhere.read_bytes()
    one_error(msi_proc(*(("jwks",) if what == "signing key" else ("create-identity", "id2"))), 1, "symbolic link")
    assert snapshot(seeded.parent) == before
    assert (snapshot(elsewhere) if elsewhere.is_dir() else elsewhere.read_bytes()) == target_before


def _as_nobody(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *msi_executable(), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )


@pytest.mark.skipif(not (IS_ROOT and SETPRIV), reason="running as another user needs root and setpriv")
def test_another_real_user_cannot_plant_a_folder_and_gets_errors_not_tracebacks(msi_proc, monkeypatch):
    # A shared, world-writable folder (like /tmp): a non-root user creates msi's private folder
    # first, as an attacker would; root's msi refuses it. Then the non-root user, running msi on
    # root's state, gets one error line (not a PermissionError traceback).
    shared = Path(tempfile.mkdtemp(prefix="msi-shared-"))
    try:
        shared.chmod(0o1777)
        state = shared / "state.toml"
        env = {k: v for k, v in os.environ.items() if k != "MSI_STATE"}
        env.update(MSI_STATE=str(state), HOME=str(shared))
        mk = subprocess.run([SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "mkdir", "-m", "777",
                             str(private(state)), str(private(state) / "keys")], capture_output=True, text=True)
        assert mk.returncode == 0, mk.stderr
        monkeypatch.setenv("MSI_STATE", str(state))
        one_error(msi_proc("create-identity", "id1"), 1, "belongs to another user")
        assert not state.exists()

        shutil.rmtree(private(state))
        assert msi_proc("create-identity", "id1").returncode == 0  # root's state now
        # root's 0600 state: click's own check of --state/MSI_STATE answers (a usage error, exit 2)
        one_error(_as_nobody(["list", "resources"], env), 2, str(state), "not readable")
        state.chmod(0o644)  # readable, but the private folder is root's
        one_error(_as_nobody(["create-identity", "id2"], env), 1, "private folder", "belongs to another user")
        one_error(_as_nobody(["show", "id1"], env), 1, "belongs to another user")
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# ---- 2. key files must prove their name ---------------------------------------------------------


def _other_rsa_bundle() -> bytes:
    from msi_cli import crypto

    pem, _ = crypto.new_rsa_signing_certificate("sts.windows.net/attacker", 0, 4_000_000_000)
    return pem


def _split(pem: bytes) -> tuple[bytes, bytes]:
    at = pem.index(b"-----BEGIN CERTIFICATE-----")
    return pem[:at], pem[at:]


@pytest.mark.parametrize("swap", ["other key and certificate", "other key, same certificate", "garbage"])
def test_a_swapped_or_damaged_signing_key_file_is_refused(msi_proc, seeded, swap):
    path = signing_key_file(seeded)
    original = path.read_bytes()
    if swap == "other key and certificate":
        forged = _other_rsa_bundle()
        thing = "thumbprint is not"
    elif swap == "other key, same certificate":
        forged = _split(_other_rsa_bundle())[0] + _split(original)[1]
        thing = "does not match its certificate"
    else:
        forged = b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
        thing = "cannot be used"
    path.write_bytes(forged)
    before = seeded.read_bytes()
    one_error(msi_proc("jwks"), 1, str(path), thing)
    # a fresh token would be signed with it: refused too (a new audience misses the cache)
    one_error(msi_proc("token", "vm1", "--audience", "https://storage.azure.com"), 1, str(path))
    assert seeded.read_bytes() == before
    path.write_bytes(original)
    assert msi_proc("token", "vm1", "--audience", "https://storage.azure.com", "-o", "none").returncode == 0


def test_a_swapped_identity_certificate_is_refused(msi_proc, seeded):
    thumbs = re.findall(r'thumbprint = "([0-9A-F]{40})"', seeded.read_text())
    for thumb in thumbs:
        path = private(seeded) / "keys" / f"{thumb}.pem"
        path.write_bytes(_other_rsa_bundle())
    one_error(msi_proc("token", "vm1", "--audience", "https://storage.azure.com"), 1, "key file", "thumbprint is not")


@pytest.mark.parametrize("command", [
    ("token", "vm1", "--audience", "https://storage.azure.com"),
    ("check-access", "vm1", "--role", "Reader", "--scope", "vm1"),
])
def test_an_identity_certificate_with_another_private_key_is_refused(msi_proc, seeded, command):
    """The certificate stays (its thumbprint is the file's name) but the private key is another
    P-256 key: MSRP's client assertion would not verify with the listed certificate. The key ring
    refuses the file before anything is signed with it."""
    from msi_cli.store import quickcert

    other_key = _split(quickcert.new_ec_certificate("attacker", 0, 4_000_000_000)[0])[0]
    for thumb in re.findall(r'thumbprint = "([0-9A-F]{40})"', seeded.read_text()):
        path = private(seeded) / "keys" / f"{thumb}.pem"
        path.write_bytes(other_key + _split(path.read_bytes())[1])
    before = seeded.read_bytes()
    one_error(msi_proc(*command), 1, "key file", "its private key does not match its certificate")
    assert seeded.read_bytes() == before


def test_a_cache_hit_token_does_not_import_cryptography(seeded):
    code = (
        "import sys; from msi_cli.cli import main; sys.argv = ['msi', 'token', 'vm1', '--audience', "
        "'https://vault.azure.net', '-o', 'none']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in sys.modules if m.startswith('cryptography')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---- 3. terminal escapes ---------------------------------------------------------------------------


def test_no_control_character_reaches_the_terminal_raw(msi_proc, seeded):
    line = one_error(msi_proc("show", "\x1b[2J\x9b31m\u202ex"), 3)
    assert "\x1b" not in line and "\x9b" not in line and "\u202e" not in line
    assert "\\x1b[2J\\x9b31m\\u202ex" in line
    out = msi_proc("show", "vm1", "--query", "'\x1b]0;owned\x07'", "-o", "tsv")
    assert out.returncode == 0 and out.stdout == "\\x1b]0;owned\\x07\n"
    js = msi_proc("show", "vm1", "--query", "'\x9b2J'", "-o", "json")
    assert js.returncode == 0 and "\x9b" not in js.stdout and json.loads(js.stdout) == "\x9b2J"
    # from the state file: a hand-edited tenant name is refused, and its message is escaped
    text = seeded.read_text()
    seeded.write_text(text.replace('name = "Default Directory"', 'name = "Default\\u001b[31mDirectory"', 1))
    line = one_error(msi_proc("list", "tenants"), 1, "invalid tenant name")
    assert "\x1b" not in line and "\\x1b[31m" in line


@pytest.mark.parametrize("query", [r'{"\u001b]0;PWNED\u0007x": name}', r'[{"\u001b[31mred": name}]', r'[{"[red]x\u009b": name}]'])
def test_keys_a_query_writes_are_escaped_in_tables(msi_proc, seeded, query):
    out = msi_proc("show", "vm1", "--query", query)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x9b" not in out.stdout and "\x07" not in out.stdout, out.stdout
    assert "\\x1b" in out.stdout or "\\x9b" in out.stdout


def test_plans_rehearsals_and_import_reports_escape_what_they_quote(msi_proc, tmp_path):
    """A federated credential's issuer and subject (any text Entra accepts), an az file's resource
    id and its file name reach the reports written for people: escaped, as every table escapes."""
    estate = tmp_path / "esc.toml"
    estate.write_text('[[subscriptions]]\nname = "moving"\n\n[[identities]]\nname = "fid"\nsubscription = "moving"\n\n'
                      '[[identities.federated_credentials]]\nname = "cred1"\n'
                      'issuer = "https://i.example.com/\\u001b]0;pwned\\u0007"\nsubject = "s\\u001b[2Jx"\n'
                      '\n[[tenants]]\nname = "Other"\n')
    for args in (("apply", str(estate), "--what-if"), ("apply", str(estate), "--yes"),
                 ("move-subscription", "moving", "--tenant", "Other", "--what-if")):
        proc = msi_proc(*args)
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout, proc.stdout
        assert "\\x1b]0;pwned\\x07" in proc.stdout and "s\\x1b[2Jx" in proc.stdout, proc.stdout
    folder = tmp_path / "az\x1b[31m"
    folder.mkdir()
    bad_id = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg/providers/Microsoft.Sql/servers/s\x1b[31m"
    (folder / "resources\x1b[2J.json").write_text(json.dumps([{
        "id": bad_id, "name": "s\x1b[31m", "type": "Microsoft.Sql/servers", "location": "eastus", "resourceGroup": "rg"}]))
    proc = msi_proc("import", "az", str(folder), "--what-if")
    assert "\x1b" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "\\x1b[2J" in proc.stdout or "\\x1b[2J" in proc.stderr


# ---- 4. state files that pass a format check but not their domain ---------------------------------


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("clock_offset = 0", "clock_offset = 9223372036854775807", "clock_offset"),
        ("clock_offset = 0", "clock_offset = -9223372036854775807", "clock_offset"),
        (re.compile(r'created = "\d{4}-\d\d-\d\dT'), 'created = "2027-02-30T', "not a real UTC time"),
        (re.compile(r'created = "\d{4}-\d\d-\d\dT'), 'created = "0001-01-01T', "not a real UTC time"),
        ('location = "eastus"', 'location = "east us\\u0000"', "invalid location"),
        ('name = "Default Directory"', 'name = ""', "invalid tenant name"),
    ],
)
def test_state_values_outside_their_domain_are_refused(msi_proc, seeded, old, new, fragment):
    text = seeded.read_text()
    bad = old.sub(new, text, count=1) if isinstance(old, re.Pattern) else text.replace(old, new, 1)
    assert bad != text
    seeded.write_text(bad)
    raw = seeded.read_bytes()
    for args in (("list", "resources"), ("create-identity", "id9"), ("token", "vm1", "--audience", "https://vault.azure.net")):
        one_error(msi_proc(*args), 1, str(seeded), fragment)
        assert seeded.read_bytes() == raw


def test_state_with_an_integer_longer_than_python_converts(msi_proc, seeded, tmp_path):
    text = seeded.read_text()
    seeded.write_text(text.replace("clock_offset = 0", "clock_offset = " + "9" * 5000, 1))
    raw = seeded.read_bytes()
    one_error(msi_proc("list", "tenants"), 1, str(seeded), "more digits")
    assert seeded.read_bytes() == raw
    export = tmp_path / "copy.json"
    seeded.write_text(text)
    assert msi_proc("state", "export", str(export)).returncode == 0
    export.write_text(export.read_text().replace("clock_offset = 0", "clock_offset = " + "9" * 5000, 1))
    before = seeded.read_bytes()
    one_error(msi_proc("state", "import", str(export)), 1, "more digits")
    assert seeded.read_bytes() == before


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_state_nested_deep_enough_to_exhaust_recursion(msi_proc, seeded, depth):
    seeded.write_bytes(seeded.read_bytes() + b"\nx = " + b"[" * depth + b"]" * depth + b"\n")
    raw = seeded.read_bytes()
    one_error(msi_proc("create-identity", "id9"), 1, str(seeded))
    assert seeded.read_bytes() == raw


# ---- 6. names that are not UTF-8 ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("create-tenant", os.fsdecode(b"\xff")),
        ("create-tenant", os.fsdecode(b"Contoso\xed\xa0\x80")),
        ("create-subscription", os.fsdecode(b"sub\xff")),
        ("create-identity", os.fsdecode(b"id\xff\xfe")),
        ("create-resource", os.fsdecode(b"vm\xff"), "--type", "vm"),
        ("create-identity", "id5", "-g", os.fsdecode(b"rg\xff")),
    ],
)
def test_names_that_are_not_utf8_are_invalid_names(msi_proc, isolated_state, args):
    one_error(msi_proc(*args), 1, "invalid", "\\x")
    assert not isolated_state.exists() or b"\xff" not in isolated_state.read_bytes()


# ---- 7. --query ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "[" * 5000 + "]" * 5000,
        "a|" * 5000 + "a",
        "!" * 5000 + "a",
        "[?location > `1`]",
        "length(@) > 'x'",
        "merge(@, `1`)",
        "'\udcff'",
        '`"\\ud800"`',
        "ceil(`1e400`)",
        "to_number('1e999')",
        "[`1e400`, 'x']",
    ],
)
def test_hostile_queries_are_usage_errors(msi_proc, seeded, query):
    for fmt in ("json", "tsv"):
        one_error(msi_proc("list", "resources", "--query", query, "-o", fmt), 2, "query")


def test_json_output_is_always_valid_json(msi_proc, seeded):
    for query in ("[].name", "{n: `1.5`, s: 'caf\u00e9', z: `null`}", "to_number('1e308')"):
        proc = msi_proc("list", "resources", "--query", query, "-o", "json")
        assert proc.returncode == 0, proc.stderr
        json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))


# ---- 8. a damaged private folder ---------------------------------------------------------------------


def test_a_lock_that_is_a_folder(msi_proc, seeded):
    lock = private(seeded) / "lock"
    lock.unlink()
    lock.mkdir()
    raw = seeded.read_bytes()
    one_error(msi_proc("create-identity", "id2"), 1, "lock", "is a folder")
    assert seeded.read_bytes() == raw


def test_a_log_with_bad_lines_shows_the_good_ones(msi_proc, seeded):
    log = private(seeded) / "activity.jsonl"
    good = [json.loads(line) for line in log.read_text().splitlines()]
    lines = log.read_text().splitlines()
    lines.insert(1, '{"time": "torn')
    lines.insert(3, "[1, 2]")
    log.write_text("\n".join(lines) + "\n")
    proc = msi_proc("log", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == good
    (warning,) = proc.stderr.splitlines()
    assert warning.startswith("warning: ") and "line 2 is not a log entry" in warning and "1 more" in warning


def test_a_log_that_is_a_folder(msi_proc, seeded):
    log = private(seeded) / "activity.jsonl"
    log.unlink()
    log.mkdir()
    one_error(msi_proc("log"), 1, "activity log", "is a folder")


# ---- 9. special files as --state --------------------------------------------------------------------


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB: /dev/zero read whole would pass it


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "folder", "huge"])
def test_special_files_as_state_fail_fast_with_bounded_memory(tmp_path, kind):
    if kind == "/dev/zero":
        path = Path("/dev/zero")
        fragment = "not a regular file"
    elif kind == "fifo":
        path = tmp_path / "fifo.toml"
        os.mkfifo(path)
        fragment = "not a regular file"
    elif kind == "folder":
        path = tmp_path / "dir.toml"
        path.mkdir()
        fragment = "is a folder"
    else:
        path = tmp_path / "huge.toml"
        with open(path, "wb") as fh:
            fh.truncate(2 << 30)  # a sparse 2 GiB file
        fragment = "larger than"
    started = time.monotonic()
    assert subprocess.run([*msi_executable(), "--version"], capture_output=True, timeout=20).returncode == 0
    start_up = time.monotonic() - started  # the interpreter's own start on this (maybe busy) machine
    for args in (("list", "resources"), ("create-identity", "id1")):
        started = time.monotonic()
        proc = subprocess.run([*msi_executable(), "--state", str(path), *args], capture_output=True, text=True,
                              timeout=20, preexec_fn=_limit_memory)
        elapsed = time.monotonic() - started
        one_error(proc, 1, fragment)
        assert elapsed < start_up + 1.0, (elapsed, start_up)  # within a second of starting
    assert not Path(str(path) + ".d").exists()


# ---- 10. failure means no change -----------------------------------------------------------------------


def test_an_unwritable_activity_log_does_not_turn_a_saved_change_into_a_failure(msi_proc, seeded):
    log = private(seeded) / "activity.jsonl"
    log.unlink()
    log.mkdir()
    proc = msi_proc("create-identity", "id2", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["name"] == "id2"
    (warning,) = proc.stderr.splitlines()
    assert warning.startswith("warning: the change was saved") and "activity log" in warning
    assert msi_proc("show", "id2").returncode == 0


# ---- 11. leftovers and umask ---------------------------------------------------------------------------


def test_the_next_writer_cleans_up_after_a_killed_one(msi_proc, seeded):
    keys = private(seeded) / "keys"
    used = sorted(p.name for p in keys.glob("*.pem"))
    # A writer killed mid-transaction: its temporary files, and a key file it had made (and
    # journalled, as msi does before writing one) for a state it never committed.
    orphan = "AAAAAAAAAAAAAAAAAAAAAAAAAAA"
    leftovers = [
        seeded.parent / ".state.toml.k1ll3d.tmp",
        private(seeded) / ".cache.x1y2.tmp",
        keys / f".{used[0]}.abc.tmp",
        keys / f"{orphan}.pem",
        keys / ".pending",
    ]
    for p in leftovers:
        # the journal also names a key the committed state uses (its writer was killed after the commit)
        journal = f"{orphan}\n{used[0][:-4]}\n"
        p.write_bytes(journal.encode() if p.name == ".pending" else b"partial")
        p.chmod(0o600)
    unrelated = [seeded.parent / ".someone-else.tmp", keys / "BBBBBBBBBBBBBBBBBBBBBBBBBBB.pem"]  # not msi's, not journalled
    for p in unrelated:
        p.write_bytes(b"not msi's")
        p.chmod(0o600)
    assert msi_proc("create-identity", "id2").returncode == 0
    assert [p for p in leftovers if p.exists()] == []
    assert all(p.exists() for p in unrelated)
    now = sorted(p.name for p in keys.glob("*.pem"))
    assert set(used) <= set(now) and len(now) == len(used) + 2  # id2's certificate, and the unrelated file
    assert msi_proc("token", "vm1", "--audience", "https://storage.azure.com", "-o", "none").returncode == 0


def test_folders_msi_creates_are_private_under_umask_000(tmp_path):
    state = tmp_path / "a" / "b" / "c" / "state.toml"
    proc = subprocess.run([*msi_executable(), "--state", str(state), "--create", "create-identity", "id1"], capture_output=True,
                          text=True, timeout=60, preexec_fn=lambda: os.umask(0))
    assert proc.returncode == 0, proc.stderr
    for folder in (tmp_path / "a", tmp_path / "a" / "b", state.parent, private(state), private(state) / "keys"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_a_query_that_fails_after_the_change_was_saved_reports_success(msi_proc, seeded):
    # `sort_by` needs an array; the new identity is an object. The identity is created, so the
    # command says so: a warning, exit 0, not an error after a change that was made.
    proc = msi_proc("create-identity", "id2", "--query", "sort_by(@, &name)", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    (warning,) = proc.stderr.splitlines()
    assert warning.startswith("warning: the change was saved, but --query")
    assert msi_proc("show", "id2").returncode == 0
    # the same query on a read is a usage error
    one_error(msi_proc("show", "id2", "--query", "sort_by(@, &name)"), 2, "--query")


def test_an_empty_state_path_is_a_usage_error(msi_proc, seeded):
    for args in (("--state", "", "list", "tenants"), ("--state=", "list", "tenants")):
        one_error(msi_proc(*args), 2, "--state: the path is empty")


@pytest.mark.parametrize("cache", ['{"x": {}}', '{"x": {"expires_on": "\\u00b2"}}', '{"x": {"expires_on": "1"}, "y": 5}',
                                   '{"x": {"expires_on": "99999999999", "not_before": "\\u0661", "expires_in": "1"}}'])
def test_a_damaged_token_cache_entry_is_dropped_not_an_internal_error(msi_proc, seeded, cache):
    tokens = seeded.parent / (seeded.name + ".d") / "tokens.json"
    tokens.write_text(cache)
    tokens.chmod(0o600)
    for _ in range(2):  # a fresh token, then the cache hit
        out = msi_proc("token", "vm1", "--audience", "https://vault.azure.net", "-o", "none")
        assert out.returncode == 0, out.stderr


def test_a_symlinked_state_is_the_file_it_names(msi_proc, tmp_path):
    """A write through a symlink changes the file it names (and its keys go beside it), instead of
    replacing the link with a new file and leaving the real state behind."""
    real, links = tmp_path / "real", tmp_path / "links"
    real.mkdir(mode=0o700)
    links.mkdir(mode=0o700)
    assert msi_proc("--state", str(real / "state.toml"), "--create", "create-identity", "ida", "-o", "none").returncode == 0
    (links / "state.toml").symlink_to(real / "state.toml")
    assert msi_proc("--state", str(links / "state.toml"), "create-identity", "idb", "-o", "none").returncode == 0
    assert (links / "state.toml").is_symlink() and not (links / "state.toml.d").exists()
    names = msi_proc("--state", str(real / "state.toml"), "list", "identities", "--query", "[].name", "-o", "tsv").stdout.split()
    assert names == ["ida", "idb"]
    exported = msi_proc("--state", str(real / "state.toml"), "state", "export", str(tmp_path / "copy.json"))
    assert exported.returncode == 0, exported.stderr  # every key the state names is beside it


@pytest.mark.parametrize(("args", "code"), [(("apply", "{src}"), 2), (("apply", "{src}", "--what-if"), 2),
                                            (("import", "az", "{src}"), 2), (("state", "import", "{src}"), 1)])
def test_a_fifo_or_a_device_given_as_a_file_is_refused_at_once(msi_proc, seeded, tmp_path, args, code):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    raw = seeded.read_bytes()
    for src in (str(fifo), "/dev/zero"):
        line = one_error(msi_proc(*(a.format(src=src) for a in args), timeout=20), code, src)
        assert "not a regular file" in line
    assert seeded.read_bytes() == raw


def test_a_duplicated_record_is_named_in_the_singular(msi_proc, seeded):
    text = seeded.read_text()
    start = text.index("[[identities]]")
    end = text.find("\n[[", start + 1)
    seeded.write_text(text + "\n" + text[start:end if end > 0 else len(text)])
    one_error(msi_proc("list", "identities"), 1, "duplicate identity '")


@pytest.mark.parametrize(("after", "line"), [('name = "Default Directory"', 'note = "keep me"'),
                                             ('location = "eastus"', "location_guessed = 1")])
def test_an_unknown_or_misplaced_key_in_the_state_is_refused_not_dropped(msi_proc, seeded, after, line):
    """A key no field reads would be lost, unsaid, by the next save of any command: refused at its line."""
    text = seeded.read_text()
    seeded.write_text(text.replace(after, f"{after}\n{line}", 1))
    raw = seeded.read_bytes()
    line_out = one_error(msi_proc("clock", "advance", "1m"), 1, str(seeded))
    assert "unknown key" in line_out or "location_guessed" in line_out, line_out
    assert seeded.read_bytes() == raw


def test_a_guessed_location_on_a_system_assigned_identity_is_refused(msi_proc, seeded):
    text = seeded.read_text()
    seeded.write_text(text.replace('kind = "SystemAssigned"', 'location_guessed = true\nkind = "SystemAssigned"', 1))
    one_error(msi_proc("list", "resources"), 1, "'location_guessed' is for user-assigned identities only")


DEEP_INPUT_PARSERS = {
    "the state file": "from msi_cli.store import codec; codec.decode(b'zz = ' + b'[' * N + b']' * N)",
    "an estate in TOML": "from msi_cli.core.estate import schema; schema.parse('zz = ' + '[' * N + ']' * N, 'e.toml')",
    "an estate in JSON": "from msi_cli.core.estate import schema; schema.parse('{\"zz\": ' + '[' * N + ']' * N + '}', 'e.json', 'json')",
    "a --query": "from msi_cli.cli import query; query.apply_query({}, '[' * N + ']' * N)",
    "a state export": ("import pathlib; from msi_cli.store import snapshot; p = pathlib.Path('x.json'); "
                       "p.write_bytes(b'[' * N + b']' * N); snapshot._read_export(p)"),
    "the token cache": ("import pathlib, os; from msi_cli.store import tokencache; p = pathlib.Path('t.json'); "
                        "p.write_bytes(b'[' * N + b']' * N); os.chmod(p, 0o600); tokencache.read_entries(p)"),
}


@pytest.mark.parametrize("what", DEEP_INPUT_PARSERS)
def test_input_nested_past_the_recursion_limit_prints_no_finalizer_traceback(what, tmp_path):
    """A garbage collection set off near the recursion limit runs finalizers that fail there and
    print 'Exception ignored in ...' beside the one error line: the parsers run without one."""
    script = textwrap.dedent("""
        import sys
        class Finalized:
            def __del__(self):
                def down(n):
                    return 0 if n == 0 else down(n - 1)
                down(20)
        def garbage(count):  # cycles with finalizers: only the collector frees them
            for _ in range(count):
                a = Finalized(); a.me = [a]
        N = 20000
        for count in range(0, 1400, 7):  # where in the parse the collector runs depends on the count
            garbage(count)
            try:
                PARSE
            except Exception:  # the refusal itself is the callers' (tested elsewhere)
                pass
    """).replace("PARSE", DEEP_INPUT_PARSERS[what])
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Exception ignored" not in done.stderr, done.stderr[-2000:]


def _with_streams(state: Path, args: tuple[str, ...], redirect: str, unbuffered: bool = False) -> subprocess.CompletedProcess:
    """The installed msi with its standard streams as a shell leaves them: `redirect` is the
    shell's (`>/dev/full`, `>&-`, `2>&-`); what is left open is captured. Python buffers a
    redirected stdout unless PYTHONUNBUFFERED is set (as on some machines): both are tried."""
    import shlex

    line = " ".join(shlex.quote(word) for word in [*msi_executable(), *args]) + " " + redirect
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    env |= {"MSI_STATE": str(state)} | ({"PYTHONUNBUFFERED": "1"} if unbuffered else {})
    return subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.e2e
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
@pytest.mark.parametrize("args", [("list", "resources"), ("list", "resources", "-o", "json"), ("show", "vm1", "-o", "tsv"),
                                  ("--version",), ("show", "--help"), ("completion", "bash"), ("demo", "--list")])
@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_output_to_a_full_disk_is_one_error_line_not_a_bug_report(seeded, args, unbuffered):
    proc = _with_streams(seeded, args, ">/dev/full", unbuffered)
    line = one_error(proc, 1, "cannot write the output: No space left on device")
    assert "internal error" not in line and "report" not in line


@pytest.mark.e2e
def test_closed_standard_streams(seeded):
    """`>&-`: a command that prints says it could not; one that prints nothing succeeds; a change
    is made all the same, as the error says. `2>&-`: the exit code still tells what happened."""
    one_error(_with_streams(seeded, ("show", "vm1"), ">&-"), 1, "cannot write the output: standard output is closed")
    quiet = _with_streams(seeded, ("show", "vm1", "-o", "none"), ">&-")
    assert (quiet.returncode, quiet.stderr) == (0, "")
    made = _with_streams(seeded, ("create-identity", "made-blind", "-o", "json"), ">&-")
    one_error(made, 1, "cannot write the output", "whatever the command changed before then is kept")
    assert "made-blind" in seeded.read_text()
    unseen = _with_streams(seeded, ("show", "nosuch"), "2>&-")
    assert (unseen.returncode, unseen.stdout) == (3, "")


@pytest.mark.e2e
def test_standard_input_closed_or_unreadable_is_a_usage_error(seeded):
    """'-' reads standard input: closed by the shell (`<&-`) or opened for writing only (`0>FILE`),
    that is one usage error, not a bug report."""
    one_error(_with_streams(seeded, ("apply", "-", "--what-if"), "<&-"), 2, "'-' means standard input, which is closed")
    one_error(_with_streams(seeded, ("verify", "-"), "<&-"), 2, "which is closed")
    one_error(_with_streams(seeded, ("verify", "-"), f"0>{seeded.parent / 'written'}"), 2, "cannot be read: Bad file descriptor")


@pytest.mark.e2e
def test_a_demo_whose_sample_files_cannot_be_written_says_why(seeded):
    """The estate demo writes az's JSON into its temporary folder: past a file size limit (as on
    a full disk) that is one error line naming the file."""
    limited = subprocess.run(["sh", "-c", "ulimit -f 1; exec \"$@\" >/dev/null", "sh", *msi_executable(), "demo", "estate"],
                             capture_output=True, text=True, timeout=120, env={**os.environ, "MSI_STATE": str(seeded)})
    one_error(limited, 1, "cannot write the demo's sample file", "File too large")
