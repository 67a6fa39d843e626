"""The simulated world as plain data. Rules live in the lifecycle modules, not here.

Times are ISO 8601 strings in UTC (`2026-11-27T01:25:52Z`): they sort as they compare, read well
in the state file, and survive a TOML round trip unchanged.
"""

from typing import Literal

from msi_cli.core import arm
from msi_cli.core.datatype import field, record

SCHEMA_VERSION = 3  # of the state document; the store upgrades older ones (1: user_identities were bare ids; 2: resource groups were implicit)

SYSTEM = "SystemAssigned"
USER = "UserAssigned"


@record
class SigningKey:
    """A tenant's token-signing key. Its private part lives in the key store, never here."""

    kid: str  # base64url SHA-1 thumbprint of the key's certificate (also the JWT `x5t`)
    created: str
    signs_until: str  # a newer key takes over signing at this time
    published_until: str  # kept in the JWKS until then, so older tokens still verify


@record
class Tenant:
    id: str
    name: str
    created: str
    signing_keys: list[SigningKey] = field(default_factory=list)


@record
class Subscription:
    id: str
    name: str
    tenant_id: str
    created: str


@record
class UserAssignment:
    """A user-assigned identity as a resource recorded it when it was attached (an entry of ARM's
    `identity.userAssignedIdentities`). Deleting the identity does not remove it: the entry then
    dangles, still naming the principal and client ids it recorded."""

    resource_id: str
    principal_id: str
    client_id: str


@record
class ResourceGroup:
    """A resource group: a named container in a subscription, with the location its metadata lives in."""

    name: str
    subscription_id: str
    location: str
    created: str
    # True when `msi import az` made the group where its first member is (no `az group list` entry
    # said where the group is): a guess that the group's own entry settles. True or None only.
    location_guessed: Literal[True] | None = None

    @property
    def id(self) -> str:
        return arm.resource_group_scope(self.subscription_id, self.name)


@record
class Resource:
    name: str
    type: str  # key into arm.RESOURCE_TYPES
    subscription_id: str
    resource_group: str
    location: str
    created: str
    system_principal_id: str | None = None  # the system-assigned identity, when enabled
    user_assigned: list[UserAssignment] = field(default_factory=list)  # attached user-assigned identities

    @property
    def user_identity_ids(self) -> list[str]:
        """The ids of the attached user-assigned identities, dangling ones included."""
        return [u.resource_id for u in self.user_assigned]

    @property
    def rtype(self) -> arm.ResourceType:
        return arm.RESOURCE_TYPES[self.type]

    @property
    def id(self) -> str:
        return arm.resource_id(self.subscription_id, self.resource_group, self.rtype.arm_type, self.name)


@record
class Identity:
    """A managed identity: the object MSRP keeps for a resource (system) or on its own (user)."""

    principal_id: str
    client_id: str
    tenant_id: str  # the directory its service principal was created in
    kind: str  # SYSTEM or USER
    name: str
    # For a user-assigned identity, its own resource id. For a system-assigned one, the id of the
    # resource it was enabled on, as MSRP recorded it then (the token's `xms_mirid`).
    resource_id: str
    location: str
    created: str
    # True when `msi import az` made a user-assigned identity knowing it only from a resource's
    # identity block (ARM's block says nothing of the identity's region): its region is that
    # resource's, a guess that the identity's own entry (az identity list) settles. Only True or
    # None: the state file holds the flag only when it is set (TOML has no null).
    location_guessed: Literal[True] | None = None


@record
class KeyCredential:
    """A certificate MSRP issued to an identity, as its service principal lists it."""

    key_id: str
    thumbprint: str  # hex SHA-1 of the certificate, upper case (`customKeyIdentifier`)
    start: str
    end: str


@record
class ServicePrincipal:
    id: str  # the identity's principalId (object id)
    app_id: str  # the identity's clientId
    tenant_id: str
    display_name: str
    alternative_names: list[str]
    key_credentials: list[KeyCredential] = field(default_factory=list)


@record
class DeletedPrincipal:
    """A deleted identity's service principal, kept (soft-deleted) for 30 days: visible, never
    restored."""

    id: str
    app_id: str
    tenant_id: str
    display_name: str
    alternative_names: list[str]
    deleted: str


@record
class RoleAssignment:
    id: str  # GUID, the last segment of the assignment's ARM id
    principal_id: str
    role_definition_id: str  # GUID of the role definition
    scope: str
    created: str


@record
class FederatedCredential:
    """A federated identity credential on a user-assigned identity: Entra trusts tokens from
    `issuer` whose `sub` is `subject` and `aud` is the one audience, for that identity."""

    identity_id: str  # the identity's principal id
    name: str
    issuer: str
    subject: str
    audiences: list[str]
    created: str


@record
class Issuer:
    """An external OIDC issuer msi plays (GitHub Actions, a Kubernetes cluster, anything else).
    Its URL depends on where `msi serve` listens, so only the name is kept; its private key lives
    in the key store under `kid`."""

    name: str
    kind: str  # github, kubernetes or generic
    kid: str
    created: str


@record
class State:
    schema: int
    clock_offset: int  # simulated time = real time + this many seconds
    default_subscription_id: str
    tenants: dict[str, Tenant] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    resource_groups: dict[str, ResourceGroup] = field(default_factory=dict)  # key: lower-case group id
    resources: dict[str, Resource] = field(default_factory=dict)  # key: lower-case resource id
    identities: dict[str, Identity] = field(default_factory=dict)  # key: principal id
    principals: dict[str, ServicePrincipal] = field(default_factory=dict)  # key: object id
    role_assignments: dict[str, RoleAssignment] = field(default_factory=dict)  # key: GUID
    deleted_principals: dict[str, DeletedPrincipal] = field(default_factory=dict)  # key: object id
    # key: "{identity principal id}/{lower-case name}"
    federated_credentials: dict[str, FederatedCredential] = field(default_factory=dict)
    issuers: dict[str, Issuer] = field(default_factory=dict)  # key: lower-case name
