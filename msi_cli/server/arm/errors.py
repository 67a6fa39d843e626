"""ARM's error envelope, `{"error": {"code", "message"}}`, and the messages ARM words itself.

Every code here is one Azure Resource Manager answers with; where msi could not source ARM's
exact message it says so in README ("Where the simulator deliberately differs")."""

from __future__ import annotations

import time

ALLOWED_AUDIENCES = (
    "https://management.core.windows.net/", "https://management.core.windows.net",
    "https://management.azure.com/", "https://management.azure.com",
)
NOT_FOUND_FIX = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def _challenge(description: str) -> list[tuple[str, str]]:
    safe = description.replace('"', "'")
    return [("WWW-Authenticate",
             f'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="{safe}"')]


def unauthenticated(code: str, message: str) -> ArmError:
    return ArmError(401, code, message, _challenge(message))


def missing_header() -> ArmError:
    return unauthenticated("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")


def invalid_header() -> ArmError:
    return unauthenticated("AuthenticationFailedInvalidHeader",
                           "Authentication failed. The 'Authorization' header is provided in an invalid format.")


def invalid_token() -> ArmError:
    return unauthenticated("InvalidAuthenticationToken", "The access token is invalid.")


def _utc(epoch: int) -> str:
    """ARM's (.NET invariant culture) date format: 5/14/2023 4:22:51 PM."""
    t = time.gmtime(epoch)
    hour = t.tm_hour % 12 or 12
    return f"{t.tm_mon}/{t.tm_mday}/{t.tm_year} {hour}:{t.tm_min:02d}:{t.tm_sec:02d} {'AM' if t.tm_hour < 12 else 'PM'}"


def expired_token(exp: int, now: int) -> ArmError:
    return unauthenticated("ExpiredAuthenticationToken",
                           f"The access token expiry UTC time '{_utc(exp)}' is earlier than current UTC time '{_utc(now)}'.")


def wrong_audience(audience: object) -> ArmError:
    allowed = ",".join(f"'{a}'" for a in ALLOWED_AUDIENCES)
    return unauthenticated("InvalidAuthenticationTokenAudience",
                           f"The access token has been obtained for wrong audience or resource '{audience}'. "
                           f"It should exactly match with one of the allowed audiences {allowed}.")


def wrong_tenant(token_tenant: str, subscription_tenant: str) -> ArmError:
    return unauthenticated(
        "InvalidAuthenticationTokenTenant",
        f"The access token is from the wrong issuer 'https://sts.windows.net/{token_tenant}/'. It must match the tenant "
        f"'https://sts.windows.net/{subscription_tenant}/' associated with this subscription. Please use the authority "
        f"(URL) 'https://login.windows.net/{subscription_tenant}' to get the token. Note, if the subscription is "
        "transferred to another tenant there is no impact to the services, but information about new tenant could take "
        "time to propagate (up to an hour). If you just transferred your subscription and see this error message, please "
        "try back later.",
    )


def authorization_failed(app_id: str, principal_id: str, action: str, scope: str) -> ArmError:
    """For a service principal, ARM names the client by its application (client) id."""
    return ArmError(
        403, "AuthorizationFailed",
        f"The client '{app_id}' with object id '{principal_id}' does not have authorization to perform action "
        f"'{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your "
        "credentials.",
    )


def linked_authorization_failed(app_id: str, principal_id: str, action: str, scope: str, linked_action: str,
                                linked: str) -> ArmError:
    return ArmError(
        403, "LinkedAuthorizationFailed",
        f"The client '{app_id}' with object id '{principal_id}' has permission to perform action '{action}' on "
        f"scope '{scope}'; however, it does not have permission to perform action(s) '{linked_action}' on the linked "
        f"scope(s) '{linked}' (respectively) or the linked scope(s) are invalid.",
    )


def missing_api_version() -> ArmError:
    return ArmError(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")


def invalid_content(detail: str) -> ArmError:
    return ArmError(400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: '{detail}'.")


def subscription_not_found(sub: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")


def group_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def resource_not_found(arm_type: str, name: str, group: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{arm_type}/{name}' under resource group '{group}' was not found. {NOT_FOUND_FIX}")


def no_route(path: str) -> ArmError:
    parts = [p for p in path.split("/") if p]
    if "providers" in (p.lower() for p in parts):
        i = [p.lower() for p in parts].index("providers")
        ns = parts[i + 1] if len(parts) > i + 1 else ""
        kind = parts[i + 2] if len(parts) > i + 2 else ""
        return ArmError(404, "InvalidResourceType", f"The resource type '{kind}' could not be found in the namespace '{ns}'.")
    return ArmError(404, "InvalidResourceType", f"The resource type could not be found for path '{path}'.")


def identity_operation_failed(resource_id: str, why: str) -> ArmError:
    return ArmError(400, "FailedIdentityOperation",
                    f"Identity operation for resource '{resource_id}' failed with error '{why}'.")


def method_not_allowed(method: str) -> ArmError:
    return ArmError(405, "MethodNotAllowed", f"The requested method '{method}' is not allowed on this resource.")
