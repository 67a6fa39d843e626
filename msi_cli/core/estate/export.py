"""A state as an estate document: names only, no ids and no key material, so it applies to any
state (a fresh one reuses its default tenant and subscription when the names match). The one id
written is that of a subscription whose name holds a '/': the scopes in it name it by that id.

Left out, because no file can name them: role assignments whose principal is gone (orphaned) and
resources' entries for deleted user-assigned identities (dangling). Soft-deleted principals,
certificates, signing keys, issuers and the clock are not part of an estate.
"""

from __future__ import annotations

from typing import Any

from msi_cli.core import arm, roledefs
from msi_cli.core.estate.apply import short_refs
from msi_cli.core.estate.schema import FORMAT, Doc
from msi_cli.core.model import USER, Identity, Resource, State


def _low(value: str) -> str:
    return value.lower()


def export(state: State) -> Doc:
    subs = {s.id: s.name for s in state.subscriptions.values()}
    tenants = {t.id: t.name for t in state.tenants.values()}
    doc: Doc = {"format": FORMAT}
    doc["tenants"] = [{"name": t.name} for t in sorted(state.tenants.values(), key=lambda t: _low(t.name))]
    doc["subscriptions"] = [
        # a name with a '/' cannot stand in a scope, which names the subscription by id (_named_scope): that id is written
        {"name": s.name, "tenant": tenants[s.tenant_id], **({"id": s.id} if "/" in s.name else {})}
        for s in sorted(state.subscriptions.values(), key=lambda s: _low(s.name))
    ]
    doc["resource_groups"] = [
        {"name": g.name, "subscription": subs[g.subscription_id], "location": g.location,
         **({"location_guessed": True} if g.location_guessed else {})}
        for g in sorted(state.resource_groups.values(), key=lambda g: (_low(subs[g.subscription_id]), _low(g.name)))
    ]
    users = sorted((i for i in state.identities.values() if i.kind == USER), key=lambda i: _ident_key(i, subs))
    ukeys = [_ident_key(i, subs) for i in users]
    urefs = short_refs(ukeys, lambda k: k[2], lambda k: k[1], lambda k: k[0])
    by_id = {i.resource_id.lower(): (i, urefs[k]) for i, k in zip(users, ukeys)}
    creds: dict[str, list[Any]] = {}
    for c in state.federated_credentials.values():
        creds.setdefault(c.identity_id, []).append(c)
    identities = []
    for i in users:
        p = arm.parts(i.resource_id)
        rec: Doc = {"name": i.name, "subscription": subs[p.subscription], "resource_group": p.resource_group, "location": i.location,
                    **({"location_guessed": True} if i.location_guessed else {})}
        held = sorted(creds.get(i.principal_id, []), key=lambda c: _low(c.name))
        if held:
            rec["federated_credentials"] = [
                {"name": c.name, "issuer": c.issuer, "subject": c.subject, "audiences": list(c.audiences)} for c in held
            ]
        identities.append(rec)
    doc["identities"] = identities
    resources = sorted(state.resources.values(), key=lambda r: _res_key(r, subs))
    system = [r for r in resources if r.system_principal_id is not None]
    skeys = [_res_key(r, subs) for r in system]
    stypes = {k: r.type for r, k in zip(system, skeys)}
    srefs = short_refs(skeys, lambda k: k[3], lambda k: k[1], lambda k: k[0], stypes.__getitem__)
    owner: dict[str, tuple[str, str]] = {}
    for r, k in zip(system, skeys):
        owner[r.system_principal_id or ""] = ("resource", srefs[k])
    for i, ref in by_id.values():
        owner[i.principal_id] = ("identity", ref)
    out = []
    for r in resources:
        rec = {"name": r.name, "type": r.type, "subscription": subs[r.subscription_id], "resource_group": r.resource_group,
               "location": r.location}
        if r.system_principal_id is not None:
            rec["system_assigned"] = True
        attached = [by_id[u.resource_id.lower()][1] for u in r.user_assigned
                    if u.resource_id.lower() in by_id and by_id[u.resource_id.lower()][0].principal_id == u.principal_id]
        if attached:
            rec["user_assigned"] = attached
        out.append(rec)
    doc["resources"] = out
    assignments = []
    for a in state.role_assignments.values():
        who = owner.get(a.principal_id)
        definition = roledefs.ROLES_BY_ID.get(a.role_definition_id)
        if who is None or definition is None:
            continue  # orphaned: its principal is gone
        assignments.append({"role": definition.name, "scope": _named_scope(a.scope, subs), who[0]: who[1]})
    doc["role_assignments"] = sorted(assignments, key=lambda a: (a["scope"].lower(), a["role"], a.get("identity", ""), a.get("resource", "")))
    return {k: v for k, v in doc.items() if v or k == "format"}


def _ident_key(i: Identity, subs: dict[str, str]) -> tuple[str, str, str]:
    p = arm.parts(i.resource_id)
    return (subs.get(p.subscription, p.subscription), p.resource_group or "", i.name)


def _res_key(r: Resource, subs: dict[str, str]) -> tuple[str, str, str, str]:
    return (subs[r.subscription_id], r.resource_group, r.rtype.arm_type, r.name)


def _named_scope(scope: str, subs: dict[str, str]) -> str:
    """A scope with its subscription written by name (an id when the name holds a '/')."""
    p = arm.parts(scope)
    name = subs.get(p.subscription, p.subscription_id)
    sub = name if "/" not in name else p.subscription_id
    if p.resource_group is None:
        return arm.subscription_scope(sub)
    if p.name is None or p.arm_type is None:
        return arm.resource_group_scope(sub, p.resource_group)
    return arm.resource_id(sub, p.resource_group, p.arm_type, p.name)


HEADER = (
    "# An msi estate: apply it with `msi apply FILE` (format: see README, 'Estates';\n"
    "# JSON Schema: `msi apply --schema`). Written by `msi export`: names only, no ids, no keys.\n"
)


def to_text(doc: Doc, fmt: str) -> str:
    if fmt == "json":
        import json

        return json.dumps(doc, indent=2) + "\n"
    import tomli_w

    out = [HEADER, "\n", f"format = {tomli_w.dumps({'f': doc.get('format', FORMAT)})[4:]}"]
    for section, entries in doc.items():
        if section == "format":
            continue
        for entry in entries:
            out.append(f"\n[[{section}]]\n")
            nested = {k: v for k, v in entry.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
            out.append(tomli_w.dumps({k: v for k, v in entry.items() if k not in nested}))
            for key, items in nested.items():
                for item in items:
                    out.append(f"\n[[{section}.{key}]]\n{tomli_w.dumps(item)}")
    return "".join(out)

