"""The simulated platform's rules. No printing, no file access: the store and the CLI do those."""
