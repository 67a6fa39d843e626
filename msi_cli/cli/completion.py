from msi_cli.cli.app import app  # noqa: F401
