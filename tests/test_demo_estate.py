"""`msi demo estate`: imports a small estate from az JSON and rehearses its tenant move."""

from __future__ import annotations


def test_demo_estate_rehearses_the_move_and_the_fix_works(cli, isolated_state) -> None:
    result = cli("demo", "estate")
    assert result.exit_code == 0, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    text = " ".join(result.stdout.split())
    assert "$ msi import az " in text and "12 objects created" in text
    assert "--what-if" in text and "2 role assignment(s) deleted; no more tokens for: shop-web, shop-worker-id" in text
    assert "principal id changed: 7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a -> " in text
    assert "AADSTS700016" in text  # the move breaks the app's tokens
    assert "$ msi create-identity shop-worker-id" in text
    assert "after the fix, both apps get tokens" in text and text.count("86400") == 3
    assert "{'" not in result.stdout
    assert not isolated_state.exists()
