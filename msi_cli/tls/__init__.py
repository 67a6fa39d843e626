"""TLS for loopback: msi's local certificate authority and the server certificates it issues.

`certs` makes keys and certificates (cryptography, imported only when called); the CA's files
live in `msi_cli.store.ca`; `msi serve` builds its `ssl` context in `msi_cli.server.tls`. Nothing
here is imported by `msi show`, `list` or `token`.
"""
