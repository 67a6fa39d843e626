"""What the IMDS and App Service protocols share: `HostProtocol`, the base both implement (the
application speaks to a host only through it), a token request as parsed from the wire, the
rejection of a request before it reaches the platform, and selector collection."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from msi_cli.core.tokens import Selector
from msi_cli.errors import TokenError
from msi_cli.server.messages import Request, Response, duplicates, parse_query

MULTIPLE_SELECTORS = "Only one of {names} may be given"


@dataclass(frozen=True, slots=True)
class TokenRequest:
    audience: str
    selector: Selector
    legacy: bool = False  # App Service 2017-09-01


class Rejected(Exception):
    """The request breaks the protocol's rules; `response` is the host's answer."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def collect_selector(params: dict[str, str], fields: dict[str, str]) -> tuple[Selector, int]:
    """The Selector from the query parameters named in `fields` (wire name -> Selector field),
    and how many selector parameters were given (aliases count separately)."""
    values: dict[str, str] = {}
    given = 0
    for wire, attr in fields.items():
        if wire in params:
            given += 1
            values.setdefault(attr, params[wire])
    return Selector(**values), given


@dataclass(frozen=True, slots=True)
class Query:
    """A query string's facts the request rules look at (read-only)."""

    params: dict[str, str]  # first value of each name
    duplicates: tuple[str, ...]


@functools.lru_cache(maxsize=512)
def query(raw: str) -> Query | None:
    """Parse a query string once: clients repeat the same query, so this is memoized. None when
    the query cannot be decoded."""
    pairs = parse_query(raw)
    if pairs is None:
        return None
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    return Query(params, tuple(duplicates(pairs)))


class HostProtocol:
    """A host's managed identity endpoint: its request rules and the shape of its answers.
    Implemented by `imds.Imds` (VMs, scale sets) and `appservice.AppService` (App Service,
    Functions, Container Apps); `kind` is the route kind (`routes.IMDS`, `routes.APPSERVICE`)."""

    kind = ""
    label = ""  # how messages name the host

    def parse(self, req: Request, secret: Callable[[], str]) -> TokenRequest:
        """Apply the host's request rules in order; raises Rejected with the host's answer.
        `secret()` is the resource's identity header secret, for hosts that require one."""
        raise NotImplementedError

    def token(self, answer: dict[str, Any], treq: TokenRequest) -> Response:
        """The success answer from the platform's (IMDS-shaped) token response."""
        raise NotImplementedError

    def error(self, exc: TokenError) -> Response:
        raise NotImplementedError

    def fault(self, status: int) -> Response:
        raise NotImplementedError

    def not_found(self, why: str) -> Response:
        raise NotImplementedError

    def server_error(self, why: str) -> Response:
        raise NotImplementedError
