"""Microsoft.ManagedIdentity/userAssignedIdentities/{id}/federatedIdentityCredentials: what
`az identity federated-credential create|show|list|delete` and azure-mgmt-msi send, on msi's own
federation model (core/federation.py), so its rules (user-assigned only, 20 per identity, the name
pattern, issuer and subject unique, one audience) answer here as they do in `msi federation`."""

from __future__ import annotations

from typing import Any

from msi_cli.core import arm, federation, lookup
from msi_cli.core.model import FederatedCredential, Identity
from msi_cli.errors import Conflict, InvalidName, MsiError
from msi_cli.server.arm import errors
from msi_cli.server.arm.call import Call, Reply
from msi_cli.server.arm.identities import UAI, existing

FIC = f"{UAI}/federatedIdentityCredentials"
READ, WRITE, DELETE = f"{FIC}/read", f"{FIC}/write", f"{FIC}/delete"


def shape(identity: Identity, cred: FederatedCredential) -> dict[str, Any]:
    """ARM's body (az flattens `properties` when it prints)."""
    return {
        "id": federation.resource_id(identity, cred.name),
        "name": cred.name,
        "type": federation.ARM_TYPE,
        "properties": {"issuer": cred.issuer, "subject": cred.subject, "audiences": list(cred.audiences)},
    }


def _identity(call: Call, action: str) -> Identity:
    """The route's identity, once the caller may perform `action` there (ARM authorizes before it
    looks: a caller without the right learns nothing of what exists)."""
    sub = call.subscription()
    call.require(action)
    group, name = call.resource_names()
    return existing(call, arm.resource_id(sub.id, group, UAI, name))


def credentials(call: Call) -> Reply:
    """GET .../federatedIdentityCredentials: the identity's credentials."""
    if call.method != "GET":
        raise errors.method_not_allowed(call.method)
    identity = _identity(call, READ)
    return Reply(200, {"value": [shape(identity, c) for c in federation.of_identity(call.state, identity)]})


_ACTIONS = {"GET": READ, "DELETE": DELETE, "PUT": WRITE}


def credential(call: Call) -> Reply:
    """GET, PUT (create or update: 201, then 200) and DELETE (200, or 204 when absent) of one."""
    if call.method not in _ACTIONS:
        raise errors.method_not_allowed(call.method)
    identity = _identity(call, _ACTIONS[call.method])
    name = call.route.params["credential"]
    known = {c.name.lower(): c for c in federation.of_identity(call.state, identity)}
    if call.method == "GET":
        if name.lower() not in known:
            raise errors.resource_not_found(FIC, name, call.resource_names()[0])
        return Reply(200, shape(identity, known[name.lower()]))
    if call.method == "DELETE":
        if name.lower() not in known:
            return Reply(204)
        federation.remove(call.changing(), _in_transaction(call, identity), name)
        return Reply(200)
    if call.method == "PUT":
        issuer, subject, audiences = _properties(call.json_body())
        try:
            cred = federation.add(call.changing(), _in_transaction(call, identity), name, issuer, subject, audiences)
        except Conflict as exc:  # issuer and subject already trusted by another credential
            raise errors.ArmError(409, "Conflict", exc.message) from None
        except InvalidName as exc:
            raise errors.ArmError(400, "InvalidResourceName", exc.message) from None
        except MsiError as exc:  # a field's length or emptiness, the audience count, the limit of 20
            raise errors.ArmError(400, "BadRequest", exc.message) from None
        return Reply(200 if name.lower() in known else 201, shape(identity, cred))
    raise errors.method_not_allowed(call.method)


def _in_transaction(call: Call, identity: Identity) -> Identity:
    found = lookup.find_user_identity_by_id(call.changing().state, identity.resource_id)
    assert found is not None, "the identity was checked against the same state"
    return found


def _properties(body: dict[str, Any]) -> tuple[str, str, list[str]]:
    props = body.get("properties")
    if not isinstance(props, dict):
        raise errors.invalid_content("'properties' must be an object with issuer, subject and audiences")
    issuer, subject, audiences = props.get("issuer"), props.get("subject"), props.get("audiences")
    if not isinstance(issuer, str) or not isinstance(subject, str):
        raise errors.invalid_content("'properties.issuer' and 'properties.subject' must be strings")
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):  # required, as issuer and subject are
        raise errors.invalid_content("'properties.audiences' must be a list of strings")
    return issuer, subject, audiences
