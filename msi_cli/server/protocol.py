"""What the IMDS and App Service protocols share: a token request as parsed from the wire, the
rejection of a request before it reaches the platform, and selector collection."""

from __future__ import annotations

from dataclasses import dataclass

from msi_cli.core.tokens import Selector
from msi_cli.server.messages import Response

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
