"""`--query JMESPATH` and `-o tsv`, as az has them (knack's query.py and output.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict

import pytest
import typer.main

from msi_cli.cli import app
from msi_cli.cli.query import apply_query
from msi_cli.cli.render import to_tsv
from msi_cli.errors import InvalidArgument


@pytest.fixture
def world(cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned", "-o", "none")
    cli.ok("create-identity", "shared-id", "-g", "rg1", "-o", "none")
    cli.ok("create-resource", "vm1", "--type", "vm", "-g", "rg1", "--user-assigned", "shared-id", "-o", "none")
    cli.ok("create-resource", "kv1", "--type", "keyvault", "-o", "none")
    return cli


def lines(text: str) -> list[str]:
    return text.splitlines()


# ---- to_tsv, checked against knack's _TsvOutput -------------------------------------------------


def test_tsv_one_row_per_item_values_in_key_order():
    data = [{"name": "b", "id": "2", "location": "x"}, {"location": "y", "id": "1", "name": "a"}]
    assert to_tsv(data) == "2\tx\tb\n1\ty\ta\n"


def test_tsv_object_built_by_a_query_keeps_its_order():
    data = [OrderedDict([("name", "a"), ("id", "1")])]
    assert to_tsv(data) == "a\t1\n"


def test_tsv_nested_objects_leave_an_empty_column_and_lists_give_their_length():
    row = {"a": "x", "b": {"deep": 1}, "c": [1, 2, 3], "d": "y"}
    assert to_tsv([row, {**row, "b": None}]) == "x\t\t3\ty\nx\tNone\t3\ty\n"


def test_tsv_nulls_and_booleans_inside_a_row_print_as_az_prints_them():
    assert to_tsv([{"a": None, "b": True, "c": False, "d": 0}]) == "None\tTrue\tFalse\t0\n"
    assert to_tsv([["x", None, True]]) == "x\tNone\tTrue\n"


def test_tsv_scalars_print_bare():
    assert to_tsv("abc") == "abc\n"
    assert to_tsv(42) == "42\n"
    assert to_tsv(True) == "true\n"
    assert to_tsv(False) == "false\n"
    assert to_tsv(["a", "b"]) == "a\nb\n"
    assert to_tsv([True, 1]) == "true\n1\n"


def test_tsv_null_result_prints_nothing_and_a_single_object_is_one_row():
    assert to_tsv(None) == ""
    assert to_tsv([]) == ""
    assert to_tsv({"b": 2, "a": 1}) == "1\t2\n"


def test_tsv_keeps_one_row_per_item_when_values_hold_tabs_or_newlines():
    assert to_tsv([{"a": "x\ty", "b": "line1\nline2"}]) == "x y\tline1 line2\n"


# ---- --query through the CLI ------------------------------------------------------------------


def test_query_filters_before_tsv(world):
    out = world.ok("list", "resources", "--query", "[?identity.type=='SystemAssigned'].name", "-o", "tsv").stdout
    assert lines(out) == ["web1"]


def test_query_scalar_prints_bare_in_tsv(world):
    principal = world.json("show", "web1")["identity"]["principalId"]
    result = world.ok("show", "web1", "--query", "identity.principalId", "-o", "tsv")
    assert result.stdout == principal + "\n"
    assert result.stderr == ""


def test_query_multiselect_hash_sets_the_tsv_column_order(world):
    out = world.ok("list", "resources", "-g", "rg1", "--query", "[].{name: name, group: resourceGroup, loc: location}", "-o", "tsv").stdout
    assert lines(out) == ["vm1\trg1\teastus"]


def test_query_applies_to_json_and_keeps_the_expression_order(world):
    data = json.loads(world.ok("list", "resources", "--query", "[?name=='vm1'].{z: name, a: type}", "-o", "json").stdout)
    assert data == [{"z": "vm1", "a": "Microsoft.Compute/virtualMachines"}]
    assert list(data[0]) == ["z", "a"]


def test_query_null_result_prints_nothing_in_every_format(world):
    for fmt in ("json", "tsv", "table"):
        result = world.ok("show", "kv1", "--query", "identity.principalId", "-o", fmt)
        assert result.stdout == "", fmt


def test_query_table_shows_the_query_result_not_the_commands_columns(world):
    out = world.ok("list", "resources", "--query", "[].{Resource: name}", "-o", "table").stdout
    assert "Resource" in out and "web1" in out and "vm1" in out
    assert "Principal id" not in out  # the list command's own columns are not used


def test_query_from_environment(world, monkeypatch):
    monkeypatch.setenv("MSI_QUERY", "name")
    assert world.ok("show", "web1", "-o", "tsv").stdout == "web1\n"


def test_tsv_without_query_one_row_per_resource_in_key_order(world):
    rows = [row.split("\t") for row in lines(world.ok("list", "resources", "-o", "tsv").stdout)]
    data = world.json("list", "resources")
    assert len(rows) == len(data) == 3
    # every row has the same columns: all keys of the list, sorted; a key a row lacks is empty
    keys = sorted({key for item in data for key in item})
    assert any(set(item) != set(keys) for item in data)  # the rows differ (a vault has no identity)
    for row, item in zip(rows, data):
        assert len(row) == len(keys)
        assert row[keys.index("name")] == item["name"]
        assert row[keys.index("id")] == item["id"]
        assert all(row[n] == "" for n, key in enumerate(keys) if key not in item)
        if isinstance(item.get("identity"), dict):
            assert row[keys.index("identity")] == ""  # nested object: column kept, content omitted


@pytest.mark.parametrize(
    ("expression", "needle"),
    [
        ("[?name=='x'", "column 12"),
        ("a.", "column 3"),
        ("foo | | bar", "unexpected '|' at column 7"),
        ("[?a=='x]", "Unclosed ' delimiter at column 6"),
        ("nofunc(@)", "unknown function nofunc()"),
        ("length(@, @)", "function length() takes 1 argument, got 2"),
    ],
)
def test_bad_query_is_a_one_line_usage_error_showing_where(world, expression, needle):
    result = world("list", "resources", "--query", expression)
    assert result.exit_code == 2
    assert result.stdout == ""
    err = result.stderr
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "--query" in err and needle in err, err


def test_bad_query_marks_the_failing_position():
    with pytest.raises(typer.BadParameter) as info:
        from msi_cli.cli.query import compile_query

        compile_query("foo | | bar")
    assert "foo | ^| bar" in info.value.message


def test_bad_query_fails_before_the_command_changes_anything(cli, isolated_state):
    result = cli("create-resource", "web9", "--type", "webapp", "--query", "[?")
    assert result.exit_code == 2
    assert "web9" not in cli.ok("list", "resources", "--query", "[].name", "-o", "tsv").stdout


def test_bad_query_in_environment_is_a_usage_error(cli, monkeypatch):
    monkeypatch.setenv("MSI_QUERY", "[?")
    result = cli("list", "tenants")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


def test_query_type_error_on_the_data_is_a_usage_error(world):
    result = world("show", "web1", "--query", "abs(name)")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --query failed on this result: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("query", ["abs(access_token)", "sort_by(@, &access_token)", "join(',', access_token)",
                                   "avg([access_token])", "map(&foo, access_token)", "access_token > `1`"])
def test_a_query_that_fails_on_a_token_never_shows_the_token(world, query):
    result = world("token", "web1", "--audience", "https://vault.azure.net", "-o", "json")
    token = json.loads(result.stdout)["access_token"]
    failed = world("token", "web1", "--audience", "https://vault.azure.net", "--query", query, "-o", "tsv")
    assert token[:20] not in failed.stderr and token[-20:] not in failed.stderr, failed.stderr
    assert failed.stderr.startswith(("error: --query", "warning: the change was saved, but --query")), failed.stderr


def test_apply_query_as_az():
    assert apply_query({"a": [{"b": 1}, {"b": 2}]}, "a[].b") == [1, 2]
    assert apply_query([{"n": "x", "t": True}], "[?t].n") == ["x"]
    assert isinstance(apply_query([{"n": "x"}], "[].{n: n}")[0], OrderedDict)
    with pytest.raises(InvalidArgument):
        apply_query({}, "[?")


def test_every_command_that_takes_output_takes_query():
    from msi_cli.cli import load

    load()
    missing = []

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")
        options = {opt for p in command.params for opt in getattr(p, "opts", [])}
        if "--output" in options and "--query" not in options:
            missing.append(path)

    walk(typer.main.get_command(app), "msi")
    assert missing == []


# ---- start-up cost: jmespath, rich and the completion module only when used ---------------------

PROBE = """
import atexit, sys
def report():
    mods = [m for m in ("jmespath", "rich", "msi_cli.cli.complete") if m in sys.modules]
    sys.stderr.write("LOADED=" + ",".join(mods) + "\\n")
atexit.register(report)
sys.argv = ["msi", *sys.argv[1:]]
from msi_cli.cli import main
main()
"""


def _loaded(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stderr.splitlines() if x.startswith("LOADED=")][-1]
    return {m for m in line[len("LOADED="):].split(",") if m}


@pytest.mark.e2e  # starts a fresh python to see what `msi show` imports
def test_show_does_not_import_jmespath_rich_or_completion(world):
    assert _loaded("show", "web1", "-o", "json") == set()
    assert _loaded("show", "web1", "-o", "tsv") == set()
    assert _loaded("show", "web1", "-o", "json", "--query", "name") == {"jmespath"}
