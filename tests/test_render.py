"""Table output: rich boxes for people at a terminal (or FORCE_COLOR), az's plain text for pipes."""

from __future__ import annotations


def test_piped_table_is_plain_aligned_text(cli):
    cli.ok("create-resource", "web1", "--type", "webapp", "--system-assigned")
    out = cli.ok("list", "resources").stdout.splitlines()
    assert out[0].split() == ["Name", "Type", "Resource", "group", "Location", "Identity", "Principal", "id", "User-assigned"]
    assert set(out[1].replace(" ", "")) == {"-"}
    assert out[2].split()[:2] == ["web1", "Microsoft.Web/sites"]
    assert not any(ch in "".join(out) for ch in "┏┃│━")
    shown = cli.ok("show", "web1").stdout.splitlines()
    assert shown[1].split() == ["name", "web1"] and shown[-1].split()[0] == "identity.tenantId"


def test_force_color_draws_a_rich_table(cli, monkeypatch):
    cli.ok("create-resource", "web1", "--type", "webapp")
    monkeypatch.setenv("FORCE_COLOR", "1")
    out = cli.ok("list", "resources").stdout
    assert "──" in out and "web1" in out and "webapp" in out  # a rule under the header; short type names


def test_state_values_are_never_markup(cli, monkeypatch):
    cli.ok("create-tenant", "[red]Contoso[/red]")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "[red]Contoso[/red]" in cli.ok("list", "tenants").stdout
    monkeypatch.delenv("FORCE_COLOR")
    assert "[red]Contoso[/red]" in cli.ok("list", "tenants").stdout


def test_empty_listing_prints_the_header_only(cli):
    out = cli.ok("list", "role-assignments").stdout.splitlines()
    assert out[0].split()[:2] == ["Principal", "id"] and len(out) == 2
