"""The App Service / Azure Functions / Container Apps identity endpoint:

    GET {IDENTITY_ENDPOINT}?resource=URI&api-version=2019-08-01   header X-IDENTITY-HEADER
    GET {MSI_ENDPOINT}?resource=URI&api-version=2017-09-01        header secret (legacy)

2019-08-01 selectors: client_id, principal_id (alias object_id), mi_res_id; 2017-09-01 knows only
`clientid`. Errors carry `statusCode`, `message` and `correlationId`. Observed App Service answers:
"No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."
(400, an unknown user-assigned selector), "An unexpected error occured while fetching the AAD Token."
(500, an unknown audience; clients retry it), "Unable to load the proper Managed Identity." (no
identity without a selector) and "Unsupported/Invalid api-version parameter"; the other messages
are the simulator's wording.
"""

from __future__ import annotations

import functools
import hmac
import time
import uuid
from collections.abc import Callable
from typing import Any

from msi_cli.core.tokens import APPSERVICE_UNABLE, appservice_answer
from msi_cli.errors import TokenError
from msi_cli.server.messages import Request, Response, encode, json_response
from msi_cli.server.hostprotocol import MULTIPLE_SELECTORS, HostProtocol, Rejected, TokenRequest, collect_selector, query
from msi_cli.server.routes import APPSERVICE

CURRENT = "2019-08-01"
LEGACY = "2017-09-01"
UNABLE_TO_LOAD = APPSERVICE_UNABLE
BAD_API_VERSION = "Unsupported/Invalid api-version parameter"
METHOD_NOT_ALLOWED = "The HTTP method is not supported by the managed identity endpoint; use GET."
UNAUTHORIZED = "The {header} header is missing or does not match this app's identity secret."
RESOURCE_REQUIRED = "The resource parameter is required."
DUPLICATE = "Duplicate query parameters are not allowed: {names}"

SELECTORS = {"client_id": "client_id", "principal_id": "object_id", "object_id": "object_id", "mi_res_id": "msi_res_id"}
LEGACY_SELECTORS = {"clientid": "client_id"}

FAULTS = {
    429: "Too many requests.",
    410: "The managed identity endpoint is being updated and will be available within 70 seconds.",
}
SERVER_ERROR = "An unexpected error occurred while acquiring the token."


def _error(status: int, message: str, log: str = "", headers: list[tuple[str, str]] | None = None) -> Response:
    correlation = str(uuid.uuid4())
    body = {"statusCode": status, "message": message, "correlationId": correlation}
    return json_response(status, body, headers=[("X-CORRELATION-ID", correlation), *(headers or [])], log=log or message)


def parse(req: Request, secret: str) -> TokenRequest:
    """Apply App Service's request rules in order; raises Rejected with its answer."""
    if req.method != "GET":
        raise Rejected(_error(405, METHOD_NOT_ALLOWED, headers=[("Allow", "GET")]))
    version, outcome = _query_rules(req.query)
    if version is None:
        assert isinstance(outcome, tuple)  # a refused api-version comes with (message, why)
        raise Rejected(_error(400, outcome[0], log=outcome[1]))
    header = "secret" if version == LEGACY else "X-IDENTITY-HEADER"
    sent = req.headers.get(header.lower())
    if sent is None or not hmac.compare_digest(sent.encode("latin-1"), secret.encode("ascii")):
        raise Rejected(_error(401, UNAUTHORIZED.format(header=header), log=f"{header} missing or wrong"))
    if isinstance(outcome, TokenRequest):
        return outcome
    raise Rejected(_error(400, outcome[0]))


@functools.lru_cache(maxsize=512)
def _query_rules(raw: str) -> tuple[str | None, TokenRequest | tuple[str, str]]:
    """The rules that depend on the query alone (memoized: a pure function): the api-version
    (None: refused, with why), then what follows the identity header check in App Service's order."""
    q = query(raw)
    if q is None:
        return None, ("The query string cannot be decoded.", "undecodable query")
    version = q.params.get("api-version")
    if version not in (CURRENT, LEGACY) or (q.duplicates and "api-version" in q.duplicates):
        return None, (BAD_API_VERSION, f"api-version {version!r}")
    legacy = version == LEGACY
    if q.duplicates:
        return version, (DUPLICATE.format(names=", ".join(q.duplicates)), "")
    audience = q.params.get("resource", "").strip()
    if not audience:
        return version, (RESOURCE_REQUIRED, "")
    selector, given = collect_selector(q.params, LEGACY_SELECTORS if legacy else SELECTORS)
    if given > 1:
        return version, (MULTIPLE_SELECTORS.format(names="client_id, principal_id (object_id) or mi_res_id"), "")
    return version, TokenRequest(audience, selector, legacy)


def legacy_date(epoch: int) -> str:
    """2017-09-01's expires_on: `06/20/2019 02:57:58 +00:00`."""
    return time.strftime("%m/%d/%Y %H:%M:%S +00:00", time.gmtime(epoch))


_BODIES: dict[tuple[str, bool], bytes] = {}


def token(response: dict[str, Any], legacy: bool) -> Response:
    """App Service's success body from the platform's (IMDS-shaped) response; kept per token,
    as nothing in it changes while the token is cached."""
    key = (response["access_token"], legacy)
    body = _BODIES.get(key)
    if body is None:
        if len(_BODIES) >= 1024:
            _BODIES.clear()
        body = _BODIES[key] = encode(_body(response, legacy))
    return Response(200, body)


def _body(response: dict[str, Any], legacy: bool) -> dict[str, Any]:
    if legacy:
        body = {
            "access_token": response["access_token"],
            "expires_on": legacy_date(int(response["expires_on"])),
            "resource": response["resource"],
            "token_type": response["token_type"],
        }
    else:
        body = {
            "access_token": response["access_token"],
            "expires_on": response["expires_on"],
            "resource": response["resource"],
            "token_type": response["token_type"],
            "client_id": response["client_id"],
            "not_before": response["not_before"],
        }
    return body


def error(exc: TokenError) -> Response:
    """The core's refusal in App Service's shape and wording."""
    status, message = appservice_answer(exc)
    return _error(status, message, log=exc.reason)


def fault(status: int) -> Response:
    return _error(status, FAULTS.get(status, SERVER_ERROR), log=f"injected fault {status}")


def not_found(why: str) -> Response:
    return _error(404, why)


def server_error(why: str) -> Response:
    return _error(500, SERVER_ERROR, log=why)


class AppService(HostProtocol):
    """App Service and Functions; Container Apps serve the same protocol."""

    kind = APPSERVICE
    label = "App Service"

    def parse(self, req: Request, secret: Callable[[], str]) -> TokenRequest:
        return parse(req, secret())

    def token(self, answer: dict[str, Any], treq: TokenRequest) -> Response:
        return token(answer, treq.legacy)

    error = staticmethod(error)
    fault = staticmethod(fault)
    not_found = staticmethod(not_found)
    server_error = staticmethod(server_error)


PROTOCOL = AppService()
