"""`msi apply` reading an estate file: every invalid file is refused with one `error:` line naming
the file and the line of the first invalid entry (exit 2), the state untouched, whatever the
file's layout (comments, multi-line strings, duplicate keys, numbers too long to read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import fails

MAINFRAME = "unknown resource type 'mainframe'"


def _write(tmp_path: Path, text: str, name: str = "estate.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("header", ["[[resources]] # the bad one", "[[ resources ]]", "[[\tresources]]", '[["resources"]]',
                                    "  [[resources]]  \t# indented"])
def test_an_array_of_tables_header_is_found_whatever_its_spacing_or_comment(cli, tmp_path: Path, header: str) -> None:
    text = f'[[resources]]\nname = "a"\ntype = "vm"\n{header}\nname = "b"\ntype = "mainframe"\n'
    fails(cli("apply", str(_write(tmp_path, text))), 2, "estate.toml, line 6:", MAINFRAME)
    # a sub-table's header too: the second credential, with a comment after its header
    text = ('[[identities]]\nname = "id1"\n[[identities.federated_credentials]]\nname = "cred1"\nissuer = "https://i.example"\n'
            'subject = "s1"\n[[ identities . federated_credentials ]] # two\nname = "x"\nissuer = "https://i.example"\nsubject = "s2"\n')
    fails(cli("apply", str(_write(tmp_path, text))), 2, "estate.toml, line 8:", "invalid federated identity credential name 'x'")


@pytest.mark.parametrize("quote", ['"""', "'''"])
def test_header_like_lines_inside_a_multi_line_string_are_not_headers(cli, tmp_path: Path, quote: str) -> None:
    text = (f'[[identities]]\nname = "id1"\nsubscription = {quote}\n[[identities]]\n[[resources]]\n{quote}\n'  # lines 1-6
            '[[resources]]\nname = "a"\ntype = "vm"\n[[resources]]\nname = "b"\ntype = "mainframe"\n')  # the bad type: line 12
    fails(cli("apply", str(_write(tmp_path, text))), 2, "estate.toml, line 12:", MAINFRAME)
    # and key-like lines in one are not the entry's keys: the missing type is reported at its entry
    text = f'[[resources]]\nname = "a"\nsubscription = {quote}\ntype = "vm"\n{quote}\n'
    fails(cli("apply", str(_write(tmp_path, text))), 2, "estate.toml, line 1:", "'type' is missing")


def test_a_json_entry_missing_a_key_is_reported_at_its_own_line(cli, tmp_path: Path) -> None:
    text = '{\n  "resources": [\n    {\n      "name": "a1"\n    },\n    {\n      "name": "b1",\n      "type": "vm"\n    }\n  ]\n}\n'
    fails(cli("apply", str(_write(tmp_path, text, "j1.json"))), 2, "j1.json, line 3:", "'type' is missing")
    # a key of an object inside the entry is not the entry's key
    text = ('{"identities": [\n {"federated_credentials": [{"name": "cred1", "issuer": "https://i.example",\n'
            '   "subject": "s1"}],\n  "location": "eastus",\n  "name": "x!"}]}\n')
    fails(cli("apply", str(_write(tmp_path, text, "j2.json"))), 2, "j2.json, line 5:", "invalid user-assigned identity name 'x!'")
    # nor is a top-level key reported without its line
    fails(cli("apply", str(_write(tmp_path, '{\n"resources": [],\n"format": "x"}', "j3.json"))), 2, "j3.json, line 3:", "'format'")


def test_a_json_estate_with_a_duplicate_key_is_refused_at_its_line(cli, tmp_path: Path, isolated_state: Path) -> None:
    cli.ok("create-resource", "web1", "--type", "webapp", "-o", "none")
    before = isolated_state.read_bytes()
    text = '{\n  "resources": [{"name": "web1", "type": "webapp"}],\n  "resources": []\n}\n'
    path = _write(tmp_path, text, "dup.json")
    for args in ([], ["--prune", "--yes"], ["--what-if"]):
        fails(cli("apply", str(path), *args), 2, "dup.json, line 3:", "duplicate key 'resources'", "nothing was changed")
    text = '{"resources": [\n  {"name": "web1",\n   "type": "webapp", "name": "web2"}\n]}\n'
    fails(cli("apply", str(_write(tmp_path, text, "dup2.json"))), 2, "dup2.json, line 3:", "duplicate key 'name'")
    assert isolated_state.read_bytes() == before
    # the same key in two objects is no duplicate
    text = '{"resources": [{"name": "web1", "type": "webapp"}, {"name": "web2", "type": "webapp"}]}'
    assert cli.json("apply", str(_write(tmp_path, text, "ok.json")))["summary"]["create"] == 1


LONG = "9" * 5000


@pytest.mark.parametrize(("name", "text", "line"), [
    ("c1.json", '{"tenants": [{"name": "x", "id": ' + LONG + "}]}\n", 1),
    ("c2.json", '{\n "tenants": [\n  {"name": "x",\n   "id": [1, -' + LONG + "]}\n ]\n}\n", 4),
    ("c3.json", LONG, 1),
    ("c1.toml", '[[tenants]]\nname = "x"\nid = ' + LONG + "\n", 3),
    ("c2.toml", '[[tenants]]\nname = """\n' + LONG + '"""\n[[resources]]\nname = "a"\nuser_assigned = [\n  "b",\n  +'
                + "_".join(LONG) + "\n]\n", 8),
])
def test_an_integer_too_long_to_read_is_refused_at_its_line(cli, tmp_path: Path, isolated_state: Path, name: str, text: str, line: int) -> None:
    cli.ok("list", "tenants", "-o", "none")
    before = isolated_state.read_bytes()
    fails(cli("apply", str(_write(tmp_path, text, name))), 2, f"{name}, line {line}:", "digits", "nothing was changed")
    assert isolated_state.read_bytes() == before


def test_installed_msi_refuses_a_too_long_integer_in_an_estate_or_az_file(msi_proc, tmp_path: Path, isolated_state: Path) -> None:
    estate = _write(tmp_path, '{"tenants": [{"name": "x", "id": ' + LONG + "}]}\n", "c1.json")
    az = _write(tmp_path, '[{"id": ' + LONG + "}]\n", "az1.json")
    assert msi_proc("list", "tenants", "-o", "none").returncode == 0
    before = isolated_state.read_bytes()
    for args, fragment in ((["apply", str(estate)], f"{estate}, line 1:"), (["import", "az", str(az)], f"{az}:")):
        done = msi_proc(*args)
        assert done.returncode == 2, done.stderr
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1
        assert done.stderr.startswith(f"error: {fragment}") and "digits" in done.stderr and "internal error" not in done.stderr
    assert isolated_state.read_bytes() == before


def test_import_az_refuses_a_too_long_integer_with_its_file(cli, tmp_path: Path) -> None:
    az = _write(tmp_path, '[\n  {"id": ' + LONG + "}\n]\n", "az1.json")
    fails(cli("import", "az", str(az)), 2, f"{az}", "digits", "nothing was changed")


def test_a_json_estate_may_name_its_schema(cli, tmp_path: Path) -> None:
    doc = {"$schema": "https://github.com/msi-cli/msi-cli/estate.schema.json", "format": "msi-estate",
           "resources": [{"name": "web1", "type": "webapp", "system_assigned": True}]}
    path = _write(tmp_path, json.dumps(doc, indent=2), "estate.json")
    assert cli.json("apply", str(path))["resources"]["web1"]["principalId"]
    schema = json.loads(cli.ok("apply", "--schema").stdout)
    assert schema["properties"]["$schema"]["type"] == "string"  # editors validating the file accept it too
    doc["$schema"] = 1
    fails(cli("apply", str(_write(tmp_path, json.dumps(doc, indent=2), "estate.json"))), 2, "estate.json, line 2:", "'$schema'")
    # a TOML estate has no use for it: still an unknown section
    fails(cli("apply", str(_write(tmp_path, '"$schema" = "x"\n'))), 2, "estate.toml, line 1:", "unknown section '$schema'")
