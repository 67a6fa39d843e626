"""Azure Resource Manager, the part `az` and the management SDKs use for identities, resource
groups and role assignments, served from msi's state with msi's rules.

Nothing here is imported by `msi show`, `list` or `token`: only `msi serve` loads it, on the
first request whose path is an ARM path (see `paths.is_arm`)."""
