"""The platform's credentials: identity certificates issued by MSRP and tenants' signing keys.

Identity certificates are valid for 90 days and rolled 45 days after issue, with no user action:
every transaction first brings them up to date with the simulated clock (`roll_due`). Tenant
signing keys sign tokens for six weeks, then stay published two more weeks so that tokens signed
before a roll still verify; the next key is published as soon as its predecessor signs, so the JWKS
always holds more than one valid key and clients holding a cached JWKS already know the next one.

Moving the clock never strands the model (`realign`): an identity always has a certificate valid
at the simulated time, and signing keys stay on their timeline, so a token that is valid at the
new time still verifies.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from msi_cli.core.timefmt import DAY, epoch, iso
from msi_cli.core.context import Ctx
from msi_cli.core.model import KeyCredential, ServicePrincipal, SigningKey, Tenant

CERT_VALIDITY = 90 * DAY
CERT_ROLL_AFTER = 45 * DAY
KEY_SIGNS_FOR = 42 * DAY
KEY_PUBLISHED_AFTER = 14 * DAY
KEY_PUBLISHED_AHEAD = KEY_SIGNS_FOR  # the next key is in the JWKS while its predecessor signs


def issue_certificate(ctx: Ctx, sp: ServicePrincipal, start: int) -> KeyCredential:
    cred = ctx.keys.new_identity_certificate(sp.app_id, start, start + CERT_VALIDITY)
    sp.key_credentials.append(cred)
    return cred


def _latest(sp: ServicePrincipal) -> KeyCredential | None:
    return max(sp.key_credentials, key=lambda c: c.start, default=None)


def roll_summary(principals: Iterable[ServicePrincipal]) -> tuple[str, str]:
    """What `roll_due` looks at, summed up over all principals: the oldest newest-certificate
    start and the earliest first-certificate end ("" when a principal has none: due now). A store
    keeps it beside a state it has not fully read, as `roll_summary`, so that a transaction that
    never touches the principals does not read them all to learn that nothing is due."""
    oldest, earliest = _NEVER, _NEVER
    for sp in principals:
        latest = _latest(sp)
        if latest is None:
            return "", ""
        oldest = min(oldest, latest.start)
        earliest = min(earliest, sp.key_credentials[0].end)
    return oldest, earliest


_NEVER = "~"  # sorts after every ISO instant


def roll_due(ctx: Ctx) -> int:
    """Roll every certificate that is 45 days old and drop expired ones; returns how many rolled."""
    rolled = 0
    now_iso = ctx.now_iso
    due_before = iso(ctx.now - CERT_ROLL_AFTER)
    summary: tuple[str, str] | None = getattr(ctx.state, "roll_summary", None)
    if summary is not None and summary[0] > due_before and summary[1] > now_iso:
        return 0  # the fast path below, for every principal at once
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
            if periods >= 2:  # the roll before the last is still in force (90 days), as steps of the clock would leave it
                issue_certificate(ctx, sp, start + (periods - 1) * CERT_ROLL_AFTER)
                rolled += 1
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
    """The key the tenant signs with now, starting a new one when none is in force; the key that
    will take over next is always published beside it."""
    at = ctx.now_iso
    key = current_key(tenant, at)
    if key is None:
        # Signs until the next key already on the timeline takes over (after the clock went back).
        upcoming = [epoch(k.created) for k in tenant.signing_keys if k.created > at]
        until = min([ctx.now + KEY_SIGNS_FOR, *upcoming])
        key = ctx.keys.new_signing_key(tenant.id, ctx.now, until, until + KEY_PUBLISHED_AFTER)
        tenant.signing_keys.append(key)
        ctx.log("Roll signing key", tenant.name, f"kid {key.kid}")
    _publish_successor(ctx, tenant, key)
    return key


def current_key(tenant: Tenant, now_iso: str) -> SigningKey | None:
    """The key the tenant signs with at `now_iso`, if it has one."""
    for key in reversed(tenant.signing_keys):
        if key.created <= now_iso < key.signs_until:
            return key
    return None


def keys_due(tenant: Tenant, now_iso: str) -> bool:
    """Whether `signing_key` has work to do: no key in force, or none published to follow it."""
    key = current_key(tenant, now_iso)
    return key is None or not _has_successor(tenant, key)


def _has_successor(tenant: Tenant, key: SigningKey) -> bool:
    """Whether a key takes over the moment `key` stops signing. (A key further on, from before
    the clock went back, does not: it is not published yet, and the gap would be signed by a key
    made only then.)"""
    return any(k.created == key.signs_until for k in tenant.signing_keys)


def _publish_successor(ctx: Ctx, tenant: Tenant, current: SigningKey) -> None:
    """Publish the key that will take over from `current` (so the JWKS always holds more than
    one valid key, and clients that cached it already know the next one). After the clock went
    back, it signs until the next key already on the timeline takes over, as `signing_key`'s do."""
    if _has_successor(tenant, current):
        return
    start = epoch(current.signs_until)
    upcoming = [epoch(k.created) for k in tenant.signing_keys if k.created > current.signs_until]
    until = min([start + KEY_SIGNS_FOR, *upcoming])
    nxt = ctx.keys.new_signing_key(tenant.id, start, until, until + KEY_PUBLISHED_AFTER)
    tenant.signing_keys.append(nxt)
    ctx.log("Publish next signing key", tenant.name, f"kid {nxt.kid}, signs from {nxt.created}")


def is_published(key: SigningKey, now: int) -> bool:
    """A key is in the tenant's JWKS from the time its predecessor starts signing (it is the next
    key) until it is withdrawn, some time after it stops signing. Keys are never dropped from the
    state: when the clock goes back, the JWKS of that time comes back with it."""
    return epoch(key.created) - KEY_PUBLISHED_AHEAD <= now < epoch(key.published_until)


def published(tenant: Tenant, now: int) -> list[SigningKey]:
    return [k for k in tenant.signing_keys if is_published(k, now)]


def roll_keys(ctx: Ctx, tenant: Tenant, emergency: bool) -> dict[str, Any]:
    """Roll the tenant's signing key now: the published next key signs from now on and a new next
    key is published. The old key stays published (tokens it signed still verify) unless the roll
    is an emergency, which withdraws it at once."""
    old = signing_key(ctx, tenant)
    nxt = min((k for k in tenant.signing_keys if k.created >= old.signs_until), key=lambda k: k.created)
    at = ctx.now_iso
    old.signs_until = at
    nxt.created = at
    nxt.signs_until = iso(ctx.now + KEY_SIGNS_FOR)
    nxt.published_until = iso(ctx.now + KEY_SIGNS_FOR + KEY_PUBLISHED_AFTER)
    if emergency:
        old.published_until = at
    _publish_successor(ctx, tenant, nxt)
    ctx.log("Roll signing keys" + (" (emergency)" if emergency else ""), tenant.name,
            f"kid {nxt.kid} signs now; kid {old.kid} " + ("withdrawn" if emergency else f"published until {old.published_until}"))
    return {
        "tenantId": tenant.id,
        "signingKid": nxt.kid,
        "previousKid": old.kid,
        "previousWithdrawn": emergency,
        "publishedKids": [k.kid for k in published(tenant, ctx.now)],
    }


def realign(ctx: Ctx) -> int:
    """After the clock moved: credentials the platform would not have issued yet (start in the
    new future) are forgotten, and every identity without a certificate valid now gets one, as
    MSRP would have issued it. Returns how many were issued."""
    at = ctx.now_iso
    issued = 0
    for sp in ctx.state.principals.values():
        if any(c.start > at for c in sp.key_credentials):
            sp.key_credentials[:] = [c for c in sp.key_credentials if c.start <= at]
        if current_certificate(sp, ctx.now) is None:
            issue_certificate(ctx, sp, ctx.now)
            sp.key_credentials.sort(key=lambda c: c.start)
            issued += 1
    if issued:
        ctx.log("Issue identity certificates", "MSRP", f"{issued} certificate(s) valid at the new time")
    return issued
