"""The store's own TOML writer (store/tomlout.py) writes exactly the bytes tomli_w writes: for
random records of every collection with hostile strings, for the header, and for a whole realistic
state file; it hands tomli_w what it does not know, and the read-only commands import neither."""

from __future__ import annotations

import importlib.util
import string
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import examples

from msi_cli.core.datatype import fields, is_record
from msi_cli.store import codec, records, tomlout
from msi_cli.store.statefile import StateFile


def seed(path: Path, count: int) -> None:
    """benchmarks/seed.py's state (loaded by path: benchmarks/ is no package, and its module
    names are too plain to put on sys.path)."""
    spec = importlib.util.spec_from_file_location("bench_seed", Path(__file__).resolve().parent.parent / "benchmarks" / "seed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.seed(path, count)


# Strings tomli_w writes as they are (the fast path), of every length around the 100-column rule
# that decides between an inline array of tables and [[sections]] ...
PLAIN = st.one_of(st.text(string.ascii_letters + string.digits + "-_./:= ", max_size=12),
                  st.text(string.ascii_letters + string.digits + "-_./:= ", max_size=100))
# ... and the hostile ones: what tomli_w escapes, non-ASCII (astral included, no lone surrogates:
# they are not UTF-8, and the store refuses them before writing), quotes of every TOML kind.
PIECES = st.sampled_from(['"', "\\", "\x7f", "\x00", "\x1f", "\n", "\r\n", "\t", "\b", "\f", "\x1b", "é", "\U0001f600",
                          "\u2028", "\ufeff", "'", '"""', "'''", "#", "=", "[[x]]", " ", "\\u0041", ""])
ANY = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
LONG = st.tuples(PLAIN, st.integers(1, 300)).map(lambda t: t[0] * t[1])
ONE_PIECE = st.tuples(PLAIN, PIECES, PLAIN).map("".join)
HOSTILE = st.one_of(ONE_PIECE, ONE_PIECE, ONE_PIECE, ANY, st.lists(st.one_of(PIECES, PLAIN), max_size=6).map("".join), LONG)
# Mostly plain: one hostile string sends its whole record to tomli_w, so a record with one among
# plain ones is what tests the fast path's check (a string it writes as is when it must not).
TEXT = st.integers(0, 5).flatmap(lambda n: HOSTILE if n == 0 else PLAIN)


def value(hint: typing.Any) -> st.SearchStrategy[typing.Any]:
    """Values of a model field's type: text, optional text or flags, lists of text or of nested objects."""
    if hint is str:
        return TEXT
    if hint is bool:
        return st.booleans()
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return st.sampled_from(args)
    if typing.get_origin(hint) is list:
        element = args[0]
        return st.lists(objects(element) if is_record(element) else TEXT, max_size=4)
    if type(None) in args:
        (other,) = [a for a in args if a is not type(None)]
        return st.one_of(st.none(), value(other))
    raise AssertionError(f"a model field type this test does not know: {hint}")  # a new kind of field: teach it here


def objects(cls: type) -> st.SearchStrategy[typing.Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{name: value(hints[name]) for name in fields(cls)})


RECORDS = st.sampled_from(sorted(records.collections().items())).flatmap(
    lambda item: st.tuples(st.just(item[0]), objects(item[1]).map(records.to_record)))


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECORDS)
def test_a_record_is_written_as_tomli_w_writes_it(coll_rec):
    coll, rec = coll_rec
    doc = {coll: [rec]}
    text = tomlout.dumps(doc)
    assert text == tomli_w.dumps(doc)
    assert tomllib.loads(text) == doc


@pytest.mark.parametrize("char", [chr(c) for c in range(128)] + ["\x80", "\xa0", "é", "\u2028", "\ufeff", "\U0001f600"],
                         ids=lambda c: f"U+{ord(c):04X}")
def test_each_character_in_an_otherwise_plain_record_is_written_as_tomli_w_writes_it(char):
    rec = {"id": "x", "name": f"a{char}b", "alternative_names": ["p", char], "key_credentials": [{"key_id": char}]}
    for doc in ({"principals": [rec]}, {"principals": [dict(rec, alternative_names=[])]}, {char: 1}):
        assert tomlout.dumps(doc) == tomli_w.dumps(doc)


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(-2**70, 2**70), st.integers(-2**40, 2**40), TEXT)
def test_the_header_is_written_as_tomli_w_writes_it(schema, offset, subscription):
    head = {"schema": schema, "clock_offset": offset, "default_subscription": subscription}
    assert tomlout.dumps(head) == tomli_w.dumps(head)
    assert tomllib.loads(tomlout.dumps(head)) == head


@pytest.mark.parametrize("doc", [
    {"a": 1.5}, {"a": {"b": 1}}, {"a": (1, 2)}, {"a": ["x", 1]}, {"a": [{"b": 1}, "c"]}, {"a": [{"b": 1.5}]},
    {"a": [{"b": {"c": 1}}]}, {"a b": 1}, {"": ""}, {"k\n": 1}, {"a": [{"b": [{"c": 1}]}]}, {"a": [{}]},
    {"a": [{"b": []}, {"c": True, "d": -3}]}, {"a": [{"x": "y" * 88}]}, {"a": [{"x": "y" * 89}]},
    {"a": [{"x": '"' * 40}]}, {"a": [{"b": [{"c": "z" * 100}], "d": 3}]},
], ids=repr)
def test_shapes_beyond_the_store_s_come_out_as_tomli_w_writes_them(doc):
    assert tomlout.dumps(doc) == tomli_w.dumps(doc)


def test_an_unknown_type_fails_as_tomli_w_fails():
    with pytest.raises(TypeError, match="not TOML serializable"):
        tomlout.dumps({"a": object()})


def test_short_nested_records_are_written_inline_by_the_fast_path(monkeypatch):
    """The 100-column rule, both sides, without the fallback (which would hide a layout bug)."""
    monkeypatch.setattr(tomli_w, "dumps", lambda doc: pytest.fail(f"fell back to tomli_w for {doc}"))
    short = {"name": "r", "user_identities": [{"id": "a", "principal_id": "b", "client_id": "c"}]}
    assert tomlout.dumps({"resources": [short]}) == (
        '[[resources]]\nname = "r"\nuser_identities = [\n    { id = "a", principal_id = "b", client_id = "c" },\n]\n')
    tiny = {"name": "r", "kind": "x"}
    assert tomlout.dumps({"issuers": [tiny]}) == 'issuers = [\n    { name = "r", kind = "x" },\n]\n'
    wide = {"name": "r", "user_identities": [{"id": "a" * 60, "principal_id": "b", "client_id": "c"}]}
    assert tomlout.dumps({"resources": [wide]}).endswith(f'\n\n[[resources.user_identities]]\nid = "{"a" * 60}"\n'
                                                          'principal_id = "b"\nclient_id = "c"\n')


def realistic(cli, state: Path) -> None:
    """About 300 resources seeded as the benchmarks do, then what the seed lacks: another tenant,
    role assignments, federated credentials, issuers, a deleted identity, a rolled signing key."""
    seed(state, 300)
    cli.ok("create-tenant", "Fabrikam", "-o", "none")
    cli.ok("create-identity", "ci-id", "-g", "rg1", "-o", "none")
    cli.ok("create-identity", "gone-id", "-g", "rg1", "-o", "none")
    for n in range(0, 300, 6):  # every third resource has a system-assigned identity
        cli.ok("grant", f"res{n}" if n % 4 else "ci-id", "--role", "Reader", "--scope", f"res{n + 1}", "-o", "none")
    cli.ok("grant", "ci-id", "--role", "Contributor", "--scope", "rg2", "-o", "none")
    cli.ok("federation", "add", "ci-id", "--name", "main", "--issuer", "https://token.actions.githubusercontent.com",
           "--subject", "repo:o/r:ref:refs/heads/main", "-o", "none")
    cli.ok("issuer", "create", "gh", "--kind", "github", "-o", "none")
    cli.ok("federation", "add", "ci-id", "--name", "aks", "--issuer", "https://oidc.prod-aks.azure.com/0000/", "--subject",
           "system:serviceaccount:ns:sa", "-o", "none")
    cli.ok("delete", "gone-id", "--yes", "-o", "none")
    cli.ok("token", "res0", "--audience", "https://vault.azure.net", "-o", "none")  # the tenant's signing key


def test_a_realistic_state_file_is_byte_identical_to_tomli_w_s(cli, isolated_state, monkeypatch):
    realistic(cli, isolated_state)
    written = isolated_state.read_bytes()  # saved record by record by the fast writer
    state = codec.load(codec.upgrade(tomllib.loads(written.decode("utf-8"))))
    assert all(getattr(state, coll) for coll in codec.COLLECTIONS), "the realistic state misses a collection"
    assert len(state.resources) >= 300 and len(state.role_assignments) >= 40
    assert any(t.signing_keys for t in state.tenants.values())
    sf = StateFile(isolated_state)
    real_dumps = tomli_w.dumps
    fallbacks: list[object] = []
    monkeypatch.setattr(tomli_w, "dumps", lambda doc: fallbacks.append(doc) or real_dumps(doc))
    fast, _, _ = sf._encode(state, b"", {})  # from scratch: every record serialised
    assert fallbacks == [], "a record of a real state took the slow path"
    monkeypatch.setattr(tomlout, "dumps", tomli_w.dumps)  # every document through tomli_w (counted)
    slow, _, _ = sf._encode(state, b"", {})
    assert len(fallbacks) > len(state.resources)
    assert fast == slow == written


@pytest.mark.e2e
def test_a_read_only_command_imports_no_toml_writer(msi_proc):
    msi_proc("create-identity", "id1", "-o", "none")
    code = ("import sys, msi_cli.cli as c; sys.argv=['msi','show','id1','-o','none'];\n"
            "try:\n c.main()\nexcept SystemExit: pass\n"
            "print([m for m in ('tomli_w', 'msi_cli.store.tomlout') if m in sys.modules], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "[]"
