"""Schema upgrade steps: each turns a state document of one version into the next (see
codec.UPGRADES for their order). Steps work on plain documents and leave malformed records for
validation to report."""

from __future__ import annotations

from typing import Any

from msi_cli.core import arm
from msi_cli.core.model import USER

Doc = dict[str, Any]


def user_identities_with_ids(doc: Doc) -> Doc:
    """Schema 1 listed a resource's user-assigned identities by id only (deleting an identity
    detached it, so each named a live identity). Schema 2 records, per entry, the principal and
    client ids the resource saw when it was attached, so that an entry outlives its identity."""
    identities = doc.get("identities")
    by_id: dict[str, Doc] = {}
    if isinstance(identities, list):
        for rec in identities:
            if isinstance(rec, dict) and rec.get("kind") == USER and isinstance(rec.get("resource_id"), str):
                by_id[rec["resource_id"].lower()] = rec
    resources = doc.get("resources")
    for rec in resources if isinstance(resources, list) else ():
        ids = rec.get("user_identities") if isinstance(rec, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            continue  # left as it is: validation reports it
        entries: list[dict[str, str]] = []
        for rid in ids:
            found = by_id.get(rid.lower(), {})
            entry: dict[str, str] = {"id": rid}
            for field, key in (("principal_id", "principal_id"), ("client_id", "client_id")):
                if isinstance(found.get(key), str):
                    entry[field] = found[key]
            entries.append(entry)
        rec["user_identities"] = entries
    return doc


def add_resource_groups(doc: dict[str, Any]) -> dict[str, Any]:
    """Resource groups become objects with a location. Create every group an older state uses (by
    a resource, a user-assigned identity or a role assignment's scope), named as first written,
    located and dated like the earliest object in it (a group only a role assignment names gets
    the default location). Malformed records are left for validation to report."""
    from msi_cli.core.directory import DEFAULT_LOCATION

    found: dict[str, dict[str, str]] = {}

    def use(sub: object, name: object, location: object, created: object) -> None:
        if not (isinstance(sub, str) and isinstance(name, str) and isinstance(location, str) and isinstance(created, str)):
            return
        key = arm.resource_group_scope(sub, name).lower()
        group = found.get(key)
        if group is None:
            found[key] = {"name": name, "subscription": sub, "location": location, "created": created}
        elif created < group["created"]:
            group["location"], group["created"] = location, created

    for rec in _records(doc, "resources"):
        use(rec.get("subscription"), rec.get("resource_group"), rec.get("location"), rec.get("created"))
    for rec in _records(doc, "identities"):
        parsed = arm.parse_id(rec["resource_id"]) if isinstance(rec.get("resource_id"), str) else None
        if rec.get("kind") == USER and parsed is not None and parsed.resource_group is not None:
            use(parsed.subscription_id, parsed.resource_group, rec.get("location"), rec.get("created"))
    for rec in _records(doc, "role_assignments"):
        parsed = arm.parse_id(rec["scope"]) if isinstance(rec.get("scope"), str) else None
        if parsed is not None and parsed.resource_group is not None:
            key = arm.resource_group_scope(parsed.subscription_id, parsed.resource_group).lower()
            if key not in found:
                use(parsed.subscription_id, parsed.resource_group, DEFAULT_LOCATION, rec.get("created"))
    if found:
        doc["resource_groups"] = list(found.values())
    return doc


def _records(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = doc.get(name)
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []
