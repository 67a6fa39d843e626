"""The Azure Instance Metadata Service identity endpoint, as VMs and scale sets see it:

    GET {host}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=URI  (Metadata: true)

Strings quoted from Microsoft's IMDS documentation or observed IMDS answers: "Required metadata
header not specified", "Identity not found", the multiple-user-assigned message, AADSTS500011 (these
four come from the core), the api-version error body and its newest-versions list. The texts of the
405, X-Forwarded-For, duplicate-parameter and fault answers are not published; the simulator's own
wording follows the documentation's rule for each.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from msi_cli.errors import TokenError
from msi_cli.server.messages import Request, Response, encode, json_response
from msi_cli.server.hostprotocol import MULTIPLE_SELECTORS, HostProtocol, Rejected, TokenRequest, collect_selector, query
from msi_cli.server.routes import IMDS

# Supported IMDS api-versions (Microsoft's list); the identity category exists since 2018-02-01.
API_VERSIONS = frozenset((
    "2018-02-01", "2018-04-02", "2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01",
    "2019-06-04", "2019-08-01", "2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15", "2020-09-01",
    "2020-10-01", "2020-12-01", "2021-01-01", "2021-02-01", "2021-03-01", "2021-05-01", "2021-08-01",
    "2021-10-01", "2021-11-01", "2021-11-15", "2021-12-13", "2023-07-01", "2023-11-15", "2024-03-15",
    "2024-07-17", "2025-04-07",
))
NEWEST_VERSIONS = ["2025-04-07", "2024-07-17", "2024-03-15"]
BAD_API_VERSION = {
    "error": "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds",
    "newest-versions": NEWEST_VERSIONS,
}
METADATA_REQUIRED = "Required metadata header not specified"
AUDIENCE_REQUIRED = "Required audience parameter not specified"
METHOD_NOT_ALLOWED = "The HTTP method (verb) isn't supported on the endpoint."
FORWARDED = "Requests must not contain the X-Forwarded-For header"
DUPLICATE = "Requests with duplicate query parameter names are rejected: {names}"

SELECTORS = {"client_id": "client_id", "object_id": "object_id", "msi_res_id": "msi_res_id", "mi_res_id": "msi_res_id"}

FAULTS = {
    429: ("too_many_requests", "Too many requests: the identity endpoint allows 20 requests per second and 5 concurrent requests per VM"),
    410: ("gone", "The identity endpoint is being updated and will be available within 70 seconds"),
}
SERVER_ERROR = ("unknown", "Failed to retrieve token from the Active directory.")


def _error(status: int, error: str, description: str, log: str = "",
           headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response(status, {"error": error, "error_description": description}, headers=headers, log=log or description)


def parse(req: Request) -> TokenRequest:
    """Apply IMDS's request rules in order; raises Rejected with IMDS's answer."""
    if req.method != "GET":
        raise Rejected(_error(405, "invalid_request", METHOD_NOT_ALLOWED, headers=[("Allow", "GET")]))
    if "x-forwarded-for" in req.headers:
        raise Rejected(_error(400, "invalid_request", FORWARDED))
    if req.headers.get("metadata") != "true":  # lower-case, as IMDS requires
        raise Rejected(_error(400, "invalid_request", METADATA_REQUIRED))
    outcome = _query_rules(req.query)
    if isinstance(outcome, TokenRequest):
        return outcome
    if outcome[0] == "api-version":
        raise Rejected(json_response(400, BAD_API_VERSION, log=outcome[1]))
    raise Rejected(_error(400, "invalid_request", outcome[1]))


@functools.lru_cache(maxsize=512)
def _query_rules(raw: str) -> TokenRequest | tuple[str, str]:
    """The rules that depend on the query alone, in IMDS's order (memoized: a pure function)."""
    q = query(raw)
    if q is None:
        return ("invalid", "The query string cannot be decoded")
    if q.duplicates:
        return ("invalid", DUPLICATE.format(names=", ".join(q.duplicates)))
    version = q.params.get("api-version")
    if version not in API_VERSIONS:
        return ("api-version", f"api-version {version!r}")
    audience = q.params.get("resource", "").strip()
    if not audience:
        return ("invalid", AUDIENCE_REQUIRED)
    selector, given = collect_selector(q.params, SELECTORS)
    if given > 1:
        return ("invalid", MULTIPLE_SELECTORS.format(names="client_id, object_id or msi_res_id (mi_res_id)"))
    return TokenRequest(audience, selector)


_BODIES: dict[tuple[str, str], bytes] = {}


def token(response: dict[str, Any]) -> Response:
    """IMDS's success body is the platform's response as it is (every value a string). Bodies
    are kept per token and expires_in, as clients ask for the same token over and over."""
    key = (response["access_token"], response["expires_in"])
    body = _BODIES.get(key)
    if body is None:
        if len(_BODIES) >= 1024:
            _BODIES.clear()
        body = _BODIES[key] = encode(response)
    return Response(200, body)


def error(exc: TokenError) -> Response:
    return _error(exc.status, exc.error, exc.description, log=exc.reason)


def fault(status: int) -> Response:
    err, description = FAULTS.get(status, SERVER_ERROR)
    return _error(status, err, description, log=f"injected fault {status}")


def not_found(why: str) -> Response:
    return _error(404, "not_found", why)


def server_error(why: str) -> Response:
    return _error(500, SERVER_ERROR[0], SERVER_ERROR[1], log=why)


class Imds(HostProtocol):
    kind = IMDS
    label = "IMDS"

    def parse(self, req: Request, secret: Callable[[], str]) -> TokenRequest:
        return parse(req)  # IMDS has no secret: the Metadata header and the link-local address guard it

    def token(self, answer: dict[str, Any], treq: TokenRequest) -> Response:
        return token(answer)

    error = staticmethod(error)
    fault = staticmethod(fault)
    not_found = staticmethod(not_found)
    server_error = staticmethod(server_error)


PROTOCOL = Imds()
