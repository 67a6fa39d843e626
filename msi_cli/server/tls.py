"""The `ssl` context of `msi serve`'s HTTPS listener: a server certificate issued by msi's local CA
at every start (so it always names the address being served), and the trust bundles clients
point REQUESTS_CA_BUNDLE and SSL_CERT_FILE at, rewritten at every start from the current roots.
Imported only when the HTTPS listener starts."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from msi_cli.store.ca import LocalCA

SERVE_DAYS = 365
LOOPBACK = ["localhost", "127.0.0.1", "::1"]


@dataclass(frozen=True)
class Setup:
    context: ssl.SSLContext
    ca_created: bool  # the CA was made by this start (clients must be told to trust it)
    ca_path: Path
    roots_source: str  # where REQUESTS_CA_BUNDLE's public roots came from; '' when none were found
    cert_path: Path  # the server certificate and its key, on disk (0600): HTTPS workers load them
    key_path: Path


def hosts_for(bind: str) -> list[str]:
    """The names the certificate carries: loopback always, plus the bound address when it is a
    specific one."""
    hosts = list(LOOPBACK)
    if bind not in ("", "0.0.0.0", "::") and bind not in hosts:
        hosts.append(bind)
    return hosts


def server_setup(private: Path, bind: str, now: int) -> Setup:
    ca = LocalCA(private)
    _, created = ca.ensure(now)
    key, cert, ca_cert = ca.issue(hosts_for(bind), now, SERVE_DAYS)
    cert_path, key_path = ca.write_server(key, cert)
    source = ca.write_bundles(ca_cert)
    return Setup(server_context(cert_path, key_path), created, ca.paths.cert, source, cert_path, key_path)


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """The listener's context, from the certificate `server_setup` wrote (also what workers load)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert_path, key_path)
    return context
