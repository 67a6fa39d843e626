"""The platform's credentials: identity certificates issued by MSRP and tenants' signing keys.

Identity certificates are valid for 90 days and rolled 45 days after issue, with no user action:
every transaction first brings them up to date with the simulated clock (`roll_due`). Tenant
signing keys sign tokens for six weeks, then stay published two more weeks so that tokens signed
before a roll still verify; the next key is published a week before it takes over, so clients
holding a cached JWKS already know it.
"""

from __future__ import annotations

from msi_cli.core.clock import DAY, epoch, iso
from msi_cli.core.context import Ctx
from msi_cli.core.model import KeyCredential, ServicePrincipal, SigningKey, Tenant

CERT_VALIDITY = 90 * DAY
CERT_ROLL_AFTER = 45 * DAY
KEY_SIGNS_FOR = 42 * DAY
KEY_PUBLISHED_AFTER = 14 * DAY
KEY_PUBLISHED_AHEAD = 7 * DAY  # the next key is in the JWKS a week before it signs anything


def issue_certificate(ctx: Ctx, sp: ServicePrincipal, start: int) -> KeyCredential:
    cred = ctx.keys.new_identity_certificate(sp.app_id, start, start + CERT_VALIDITY)
    sp.key_credentials.append(cred)
    return cred


def _latest(sp: ServicePrincipal) -> KeyCredential | None:
    return max(sp.key_credentials, key=lambda c: c.start, default=None)


def roll_due(ctx: Ctx) -> int:
    """Roll every certificate that is 45 days old and drop expired ones; returns how many rolled."""
    rolled = 0
    now_iso = ctx.now_iso
    due_before = iso(ctx.now - CERT_ROLL_AFTER)
    for sp in ctx.state.principals.values():
        latest = _latest(sp)
        if latest is not None and latest.start > due_before:
            if sp.key_credentials[0].end > now_iso:
                continue  # nothing due, nothing expired: the common case, kept cheap
        if latest is None:
            issue_certificate(ctx, sp, ctx.now)
            rolled += 1
        elif latest.start <= due_before:
            start = epoch(latest.start)
            periods = (ctx.now - start) // CERT_ROLL_AFTER
            issue_certificate(ctx, sp, start + periods * CERT_ROLL_AFTER)
            rolled += 1
        sp.key_credentials[:] = [c for c in sp.key_credentials if c.end > now_iso]
        sp.key_credentials.sort(key=lambda c: c.start)
    if rolled:
        ctx.log("Roll identity certificates", "MSRP", f"{rolled} certificate(s) issued")
    return rolled


def current_certificate(sp: ServicePrincipal, now: int) -> KeyCredential | None:
    """The certificate the platform presents for this identity now: the newest one in force."""
    at = iso(now)
    valid = [c for c in sp.key_credentials if c.start <= at < c.end]
    return max(valid, key=lambda c: c.start, default=None)


def signing_key(ctx: Ctx, tenant: Tenant) -> SigningKey:
    """The key the tenant signs with now, rolling to a new one when the current one retires."""
    publish_keys(ctx, tenant)
    at = ctx.now_iso
    key = current_key(tenant, at)
    if key is not None:
        _publish_successor(ctx, tenant, key)
        return key
    key = ctx.keys.new_signing_key(
        tenant.id, ctx.now, ctx.now + KEY_SIGNS_FOR, ctx.now + KEY_SIGNS_FOR + KEY_PUBLISHED_AFTER
    )
    for older in tenant.signing_keys:
        if older.signs_until > at:
            older.signs_until = at  # the new key takes over; the old one stays published
    tenant.signing_keys.append(key)
    ctx.log("Roll signing key", tenant.name, f"kid {key.kid}")
    return key


def current_key(tenant: Tenant, now_iso: str) -> SigningKey | None:
    """The key the tenant signs with at `now_iso`, if it has one."""
    for key in reversed(tenant.signing_keys):
        if key.created <= now_iso < key.signs_until:
            return key
    return None


def _publish_successor(ctx: Ctx, tenant: Tenant, current: SigningKey) -> None:
    """Publish the key that will take over from `current`, once its retirement is a week away."""
    if epoch(current.signs_until) - ctx.now > KEY_PUBLISHED_AHEAD:
        return
    if any(k.created >= current.signs_until for k in tenant.signing_keys):
        return
    start = epoch(current.signs_until)
    nxt = ctx.keys.new_signing_key(tenant.id, start, start + KEY_SIGNS_FOR, start + KEY_SIGNS_FOR + KEY_PUBLISHED_AFTER)
    tenant.signing_keys.append(nxt)
    ctx.log("Publish next signing key", tenant.name, f"kid {nxt.kid}, signs from {nxt.created}")


def publish_keys(ctx: Ctx, tenant: Tenant) -> list[SigningKey]:
    """The keys a tenant publishes now (dropping those past their publication window)."""
    at = ctx.now_iso
    tenant.signing_keys[:] = [k for k in tenant.signing_keys if k.published_until > at]
    return tenant.signing_keys

