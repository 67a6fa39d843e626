"""msi-cli: a command-line simulator of Azure managed identities."""

__version__ = "0.1.0"
