"""Persistence: the TOML state file, its parse cache, the key ring and the token cache."""
