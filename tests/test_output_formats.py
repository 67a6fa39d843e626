"""-o yaml / -o jsonc as az has them, and the global --only-show-errors / --verbose / --debug."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml


def test_yaml_is_azs_safe_dump(cli):
    data = cli.json("create-resource", "web1", "--type", "webapp", "--system-assigned")
    out = cli.ok("show", "web1", "-o", "yaml").stdout
    assert yaml.safe_load(out) == data
    top = [line.split(":")[0] for line in out.splitlines() if not line.startswith(" ")]
    assert top == sorted(data)  # keys sorted, as safe_dump writes them
    listed = cli.ok("list", "resources", "-o", "yaml", "--query", "[].name").stdout
    assert listed == "- web1\n"


@pytest.mark.parametrize("mark", ["\u202e", "\u2066", "\u200f", "\u2028"])
def test_yaml_writes_no_bidi_mark_raw_and_keeps_the_value(cli, mark):
    """PyYAML keeps such characters raw where unicode is kept; msi escapes them (and so every
    non-ASCII character of that document), as its JSON, TSV and tables do."""
    cli.ok("create-identity", "deploy-id", "-o", "none")
    subject = f"repo:o/a:ref:refs/heads/{mark}niam-é"
    cli.ok("federation", "add", "deploy-id", "--name", "rlo", "--issuer", "https://example.com", "--subject", subject, "-o", "none")
    out = cli.ok("federation", "show", "deploy-id", "rlo", "-o", "yaml").stdout
    assert mark not in out and "é" not in out
    assert yaml.safe_load(out)["subject"] == subject
    assert "é" in cli.ok("show", "deploy-id", "-o", "yaml", "--query", "'caf\u00e9'").stdout  # unicode kept otherwise


def test_jsonc_is_json_when_piped(cli):
    cli.ok("create-identity", "id1")
    assert cli.ok("show", "id1", "-o", "jsonc").stdout == cli.ok("show", "id1", "-o", "json").stdout


def test_tsv_columns_are_stable_for_every_row(cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned")
    cli.ok("create-resource", "kv1", "--type", "keyvault")
    rows = [line.split("\t") for line in cli.ok("list", "resources", "-o", "tsv").stdout.splitlines()]
    assert len({len(row) for row in rows}) == 1


def test_only_show_errors_hides_warnings(cli):
    cli.ok("create-identity", "shared-id")
    cli.ok("create-resource", "vm1", "--type", "vm", "--user-assigned", "shared-id")
    loud = cli("delete", "shared-id", "--yes", "-o", "none")
    assert loud.exit_code == 0 and "warning:" in loud.stderr
    cli.ok("create-identity", "other-id")
    cli.ok("assign", "vm1", "--user-assigned", "other-id")
    quiet = cli("delete", "other-id", "--yes", "-o", "none", "--only-show-errors")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert cli("show", "nosuch", "--only-show-errors").stderr.startswith("error:")


def test_verbose_and_debug_go_to_stderr(cli, isolated_state):
    cli.ok("create-identity", "id1")
    verbose = cli("show", "id1", "--query", "name", "-o", "tsv", "--verbose")
    assert verbose.stdout == "id1\n" and "INFO: Command ran in" in verbose.stderr
    debug = cli("show", "id1", "--query", "name", "-o", "tsv", "--debug")
    assert debug.stdout == "id1\n"
    assert f"DEBUG: state file: {isolated_state}" in debug.stderr and "DEBUG: timings:" in debug.stderr
    assert "DEBUG" not in cli("show", "id1").stderr


@pytest.mark.e2e
def test_yaml_is_imported_only_when_asked_for(isolated_state):
    code = ("import sys, msi_cli.cli as c; sys.argv=['msi','list','resources','-o','json'];\n"
            "try:\n c.main()\nexcept SystemExit: pass\nprint('yaml' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout) == [] and done.stderr.strip().endswith("False")
