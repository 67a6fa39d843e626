"""What `az ... -o json` printed, as an estate document that `msi apply` machinery recreates.

Which az command printed a file, and the shapes of its items: `msi_cli.core.estate.azfiles`.

Names, ids, tenants, subscriptions and real principal ids are kept; a system-assigned identity's
client id is not in ARM's identity block, so msi makes one. What msi does not model is reported,
never fatal: other principal types (users, groups), custom roles, management-group scopes, child
resources, names msi's rules refuse.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from msi_cli.core import arm, roles
from msi_cli.core.estate.azfiles import IDENTITY_TYPE, TYPE_KEYS, arm_location, kind_of
from msi_cli.core.estate.schema import Estate, parse
from msi_cli.core.model import State
from msi_cli.errors import InvalidArgument, MsiError, deep_input

Doc = dict[str, Any]


class Converter:
    def __init__(self, state_tenants: dict[str, str] | None = None, state_subs: dict[str, tuple[str, str]] | None = None) -> None:
        self.state_tenants = state_tenants or {}  # tenants the state holds: id -> name
        self.known = state_subs or {}  # subscriptions the state holds: lower id -> (name, tenant id)
        self.report: dict[str, Any] = {"files": [], "skipped": [], "plainResources": [], "principals": {}, "disambiguated": []}
        self.tenants: dict[str, str | None] = {}  # id -> the name az gave it (None: az gave none)
        self.subs: dict[str, dict[str, Any]] = {}  # lower id -> {"name" (az's, or None), "tenant" (id), "id"}
        self.groups: dict[tuple[str, str], Doc] = {}
        self.identities: dict[str, Doc] = {}  # lower id -> spec
        self.resources: dict[str, Doc] = {}  # lower id -> spec
        self.system_of: dict[str, str] = {}  # real principal id -> resource lower id
        self.user_of: dict[str, str] = {}  # real principal id -> identity lower id
        self.assignments: list[Doc] = []
        self.guessed: set[str] = set()  # identities (lower id) whose location is their resource's: no entry of their own gave one

    def skip(self, what: str, why: str) -> None:
        self.report["skipped"].append({"item": what, "reason": why})

    def read(self, name: str, text: str) -> None:
        try:
            with deep_input():
                data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"{name}, line {exc.lineno}: not valid JSON: {exc.msg}; nothing was changed") from None
        except RecursionError:  # as `msi apply` says of the same file
            raise InvalidArgument(f"{name}: not valid JSON: nested too deeply; nothing was changed") from None
        except ValueError:  # an integer of more digits than Python reads: as `msi apply` refuses it, in one line
            raise InvalidArgument(f"{name}: an integer of more digits than msi reads; nothing was changed") from None
        items = data if isinstance(data, list) else [data]
        kind = kind_of(items)
        self.report["files"].append({"file": name, "kind": kind, "items": len(items)})
        if kind == "unknown":
            self.skip(name, "not output of a supported az command (account, group, resource, identity, vm, webapp, role assignment list)")
            return
        for item in items:
            if not isinstance(item, dict):
                self.skip(f"{name}: {str(item)[:60]}", "not an object")
                continue
            read_as = "az resource list" if kind in ("az vm list", "az webapp list", "az functionapp list") else kind  # one ARM shape
            getattr(self, "_" + read_as.removeprefix("az ").replace(" ", "_"))(item)

    # ---- by kind ----------------------------------------------------------------------------------------

    def _account_list(self, a: Doc) -> None:
        tid, sid = str(a.get("tenantId", "")).lower(), str(a.get("id", "")).lower()
        if not (arm.is_guid(tid) and arm.is_guid(sid)):
            self.skip(str(a.get("name")), "an account entry without tenant and subscription ids")
            return
        name = a.get("tenantDisplayName")
        if name or tid not in self.tenants:
            self.tenants[tid] = str(name) if name else None
        self.subs[sid] = {"name": str(a.get("name") or "") or None, "tenant": tid, "id": sid}

    def _sub(self, sub_id: str) -> str | None:
        low = sub_id.lower()
        if not arm.is_guid(low):
            return None
        if low not in self.subs and low in self.known:  # imported before, or made here: the same subscription
            self.subs[low] = {"name": None, "tenant": self.known[low][1], "id": low}
        if low not in self.subs:
            self.subs[low] = {"name": None, "tenant": None, "id": low}  # named by its id: not in az account list
        return low

    def _group_list(self, g: Doc) -> None:
        p = arm.parse_id(str(g.get("id", "")))
        if p is None or p.resource_group is None or self._sub(p.subscription_id) is None:
            self.skip(str(g.get("id")), "not a resource group id")
            return
        self._group(p.subscription, p.resource_group, arm_location(g.get("location")))

    def _group(self, sub: str, name: str, location: str) -> None:
        """A group from its own entry (az group list). A group only its members name is not declared:
        the plan makes it where its first member is and marks its region as a guess (the estate's
        `groups_guessed`), which never refuses a member imported later and which the group's own
        entry, imported later, settles."""
        self.groups[(sub, name.lower())] = {"name": name, "subscription": sub, "location": location}

    def _identity_list(self, i: Doc) -> None:
        self._user_identity(str(i.get("id", "")), i.get("principalId"), i.get("clientId"), arm_location(i.get("location")), i.get("tenantId"))

    def _user_identity(self, rid: str, principal: object, client: object, location: str, tenant: object = None,
                       guessed: bool = False) -> str | None:
        """An identity from its own entry (az identity list, az resource list), or from a resource's
        identity block (`guessed`: the block does not say where the identity is, so it is placed
        with the resource until an entry of its own says otherwise, in whatever order they come)."""
        p = arm.parse_id(rid)
        if p is None or p.name is None or p.resource_group is None or (p.arm_type or "").lower() != IDENTITY_TYPE:
            self.skip(rid, "not a user-assigned identity id")
            return None
        sub = self._sub(p.subscription_id)
        try:
            arm.validate_identity_name(p.name)
            arm.validate_location(location)
        except MsiError as exc:
            self.skip(rid, exc.message)
            return None
        if sub is None:
            self.skip(rid, "not a subscription id")
            return None
        if isinstance(tenant, str) and arm.is_guid(tenant) and self.subs[sub]["tenant"] is None:
            self.subs[sub]["tenant"] = tenant.lower()
        key = rid.lower()
        spec = self.identities.get(key)
        if spec is None:
            spec = {"name": p.name, "subscription": sub, "resource_group": p.resource_group, "location": location}
            self.identities[key] = spec
            if guessed:
                self.guessed.add(key)
        elif key in self.guessed and not guessed:
            spec["location"] = location
            self.guessed.discard(key)
        if isinstance(principal, str) and isinstance(client, str) and arm.is_guid(principal) and arm.is_guid(client):
            spec["principal_id"], spec["client_id"] = principal.lower(), client.lower()
            self.user_of[principal.lower()] = key
        return key

    def _role_assignment_list(self, a: Doc) -> None:
        self.assignments.append(a)

    def _resource_list(self, r: Doc) -> None:
        rid, type_ = str(r.get("id", "")), str(r.get("type", ""))
        p = arm.parse_id(rid)
        if type_.lower() == IDENTITY_TYPE:  # az resource list lists identities too (without their ids)
            self._user_identity(rid, r.get("principalId"), r.get("clientId"), arm_location(r.get("location")))
            return
        if p is None or p.name is None or p.resource_group is None or p.arm_type is None:
            self.skip(rid, f"a child resource or an id msi does not model ({type_})")
            return
        sub = self._sub(p.subscription_id)
        if sub is None:
            self.skip(rid, "not a subscription id")
            return
        key_type = TYPE_KEYS.get(p.arm_type.lower())
        if key_type == "webapp" and "functionapp" in str(r.get("kind", "")).lower():
            key_type = "functionapp"
        plain = key_type is None
        if plain:
            key_type = p.arm_type if arm.is_plain_type(p.arm_type) else None
            if key_type is None:
                self.skip(rid, f"type {type_} is not one msi can keep")
                return
        location = arm_location(r.get("location"))
        assert key_type is not None
        try:
            arm.validate_resource_name(key_type, p.name)
            arm.validate_resource_group(p.resource_group)
            arm.validate_location(location)
        except MsiError as exc:
            self.skip(rid, exc.message)
            return
        key = rid.lower()
        spec = self.resources.get(key)
        if spec is None:
            spec = {"name": p.name, "type": key_type, "subscription": sub, "resource_group": p.resource_group, "location": location}
            self.resources[key] = spec
            if plain:
                self.report["plainResources"].append({"id": rid, "type": p.arm_type})
        identity = r.get("identity")
        if isinstance(identity, dict) and not plain and arm.RESOURCE_TYPES[key_type].supports_identity:
            self._identity_block(key, spec, identity, location)
        elif isinstance(identity, dict) and str(identity.get("type", "None")) != "None":
            self.skip(rid, "its identity is dropped: msi keeps this type as a plain resource without identities")

    def _identity_block(self, key: str, spec: Doc, block: Doc, location: str) -> None:
        kinds = str(block.get("type", "")).replace(" ", "").lower().split(",")
        principal = block.get("principalId")
        if "systemassigned" in kinds:
            spec["system_assigned"] = True
            if isinstance(principal, str) and arm.is_guid(principal):
                spec["principal_id"] = principal.lower()
                self.system_of[principal.lower()] = key
            tenant = block.get("tenantId")
            if isinstance(tenant, str) and arm.is_guid(tenant) and self.subs[spec["subscription"]]["tenant"] is None:
                self.subs[spec["subscription"]]["tenant"] = tenant.lower()
        users = block.get("userAssignedIdentities") or {}
        refs: list[str] = []
        if isinstance(users, dict):
            for uid, ids in users.items():
                ids = ids if isinstance(ids, dict) else {}
                ukey = self._user_identity(uid, ids.get("principalId"), ids.get("clientId"), location, guessed=True)
                if ukey is not None and ukey not in refs:
                    refs.append(ukey)
        if refs:
            spec["user_assigned"] = refs

    # ---- the document --------------------------------------------------------------------------------------

    def _names(self, kind: str, wanted: dict[str, str], held: dict[str, str], limit: int) -> dict[str, str]:
        """The display name each object (by id) gets: the name az gave it, unless an object with
        another id has that name (Azure does not make display names unique, msi does: files and
        commands name them); then the name followed by the start of its id, `Pay-As-You-Go
        (1111aaaa)`, reported. An object the state holds keeps such a name (importing again changes
        nothing); the objects of the state the files do not name keep theirs."""
        def options(obj_id: str) -> list[str]:
            base = wanted[obj_id]
            out = [base] + [base[:limit - len(tag) - 3] + f" ({tag})" for tag in (obj_id[:8], obj_id)]
            current = held.get(obj_id)
            return [current, *out] if current is not None and current.lower() in (o.lower() for o in out) else out

        taken = {name.lower() for obj_id, name in held.items() if obj_id not in wanted}
        first = sorted(wanted, key=lambda i: (held.get(i, "").lower() not in (o.lower() for o in options(i)), i))
        names: dict[str, str] = {}
        for obj_id in first:
            name = next((o for o in options(obj_id) if o.lower() not in taken), obj_id)
            taken.add(name.lower())
            names[obj_id] = name
            if name != wanted[obj_id]:
                self.report["disambiguated"].append({"kind": kind, "id": obj_id, "azName": wanted[obj_id], "name": name})
        return names

    def document(self) -> Doc:
        for s in self.subs.values():
            if s["tenant"]:
                self.tenants.setdefault(s["tenant"], None)
        tenant_names = self._names("tenant", {
            tid: name or self.state_tenants.get(tid) or f"tenant {tid}" for tid, name in self.tenants.items()}, self.state_tenants, 256)
        sub_names = self._names("subscription", {
            k: s["name"] or (self.known[k][0] if k in self.known else k) for k, s in self.subs.items()},
            {k: name for k, (name, _) in self.known.items()}, 64)
        idents = {}
        for key, spec in self.identities.items():
            idents[key] = {**spec, "subscription": sub_names[spec["subscription"]]}
        ident_ref = {key: f"{s['subscription']}/{s['resource_group']}/{s['name']}" for key, s in idents.items()}
        resources = {}
        for key, spec in self.resources.items():
            out = {**spec, "subscription": sub_names[spec["subscription"]]}
            if "user_assigned" in spec:
                out["user_assigned"] = [ident_ref[u] for u in spec["user_assigned"]]
            resources[key] = out
        res_ref = {key: f"{s['subscription']}/{s['resource_group']}/{s['name']}" for key, s in resources.items()}
        shared = Counter(r.lower() for r in res_ref.values())
        for key, s in resources.items():  # a VM and a web app may share a name in a group: the type tells them apart
            if shared[res_ref[key].lower()] > 1 and "/" not in s["type"]:
                res_ref[key] = f"{s['subscription']}/{s['resource_group']}/{s['type']}:{s['name']}"
        doc: Doc = {"format": "msi-estate"}
        doc["tenants"] = [{"name": name, "id": tid} for tid, name in sorted(tenant_names.items())]
        doc["subscriptions"] = [
            {"name": sub_names[k], "id": s["id"], **({"tenant": tenant_names[s["tenant"]]} if s["tenant"] else {})}
            for k, s in sorted(self.subs.items(), key=lambda item: sub_names[item[0]].lower())
        ]
        doc["resource_groups"] = [{**g, "subscription": sub_names[g["subscription"]]} for g in self.groups.values()]
        doc["identities"] = list(idents.values())
        doc["resources"] = list(resources.values())
        doc["role_assignments"] = self._assignments(idents, ident_ref, res_ref)
        for real, key in self.system_of.items():
            self.report["principals"][real] = {"kind": "SystemAssigned", "resource": res_ref[key]}
        for real, key in self.user_of.items():
            self.report["principals"][real] = {"kind": "UserAssigned", "identity": ident_ref[key]}
        return doc

    def _tenant_of_sub(self, sub: str) -> str | None:
        s = self.subs.get(sub)
        return s["tenant"] if s else None

    def _assignments(self, idents: dict[str, Doc], ident_ref: dict[str, str], res_ref: dict[str, str]) -> list[Doc]:
        out: list[Doc] = []
        seen: set[tuple[str, str, str]] = set()
        for a in self.assignments:
            what = str(a.get("id") or a.get("name"))
            principal = str(a.get("principalId", "")).lower()
            ptype = str(a.get("principalType", ""))
            entry: Doc = {}
            if principal in self.system_of:
                entry["resource"] = res_ref[self.system_of[principal]]
                home = self.resources[self.system_of[principal]]["subscription"]
            elif principal in self.user_of:
                entry["identity"] = ident_ref[self.user_of[principal]]
                home = self.identities[self.user_of[principal]]["subscription"]
            else:
                why = (f"principal type {ptype} is not modelled (msi simulates managed identities only)" if ptype and ptype != "ServicePrincipal"
                       else f"principal {principal} is not a managed identity of the imported files")
                self.skip(what, why)
                continue
            role_ref = str(a.get("roleDefinitionName") or a.get("roleDefinitionId") or "")
            try:
                role = roles.role(role_ref)
            except MsiError:
                self.skip(what, f"role '{role_ref}' is not one of msi's built-in roles")
                continue
            scope = str(a.get("scope", ""))
            p = arm.parse_id(scope)
            if p is None:
                self.skip(what, f"scope '{scope}' is not a subscription, resource group or resource msi models")
                continue
            if p.name is not None and scope.lower().rstrip("/") not in self.resources and scope.lower().rstrip("/") not in idents:
                self.skip(what, f"scope '{scope}' was not imported")
                continue
            if p.subscription not in self.subs:
                self.skip(what, f"scope '{scope}' is in a subscription that was not imported")
                continue
            if self._tenant_of_sub(p.subscription) != self._tenant_of_sub(home):
                self.skip(what, "the principal and the scope are in different tenants (msi grants within one tenant)")
                continue
            key = (principal, role.id, scope.lower().rstrip("/"))
            if key in seen:
                continue
            seen.add(key)
            entry.update({"role": role.name, "scope": scope.rstrip("/")})
            name = str(a.get("name", "")).lower()
            if arm.is_guid(name):
                entry["id"] = name
            out.append(entry)
        return out


def _converted(files: list[tuple[str, str]], state: State | None) -> Converter:
    tenants = {} if state is None else {tid: t.name for tid, t in state.tenants.items()}
    subs = {} if state is None else {sid.lower(): (sub.name, sub.tenant_id) for sid, sub in state.subscriptions.items()}
    c = Converter(tenants, subs)
    for name, text in files:
        c.read(name, text)
    return c


def convert(files: list[tuple[str, str]], state: State | None = None) -> tuple[Doc, dict[str, Any]]:
    """(the estate document, the report) for az JSON texts given as (name, text). `state`: the
    state they are imported into, whose tenants and subscriptions the files' ids name."""
    c = _converted(files, state)
    return c.document(), c.report


def estate(files: list[tuple[str, str]], state: State | None = None) -> tuple[Estate, dict[str, Any]]:
    """(the estate, the report) for az JSON texts given as (name, text): `convert`'s document,
    read as an estate file, its identities whose location is a guess marked as such."""
    c = _converted(files, state)
    out = parse(json.dumps(c.document(), indent=1), "the estate made from the az files", "json")
    for key, spec in zip(c.identities, out.identities):
        spec.location_guessed = key in c.guessed
    out.groups_guessed = True
    return out, c.report


def mapping(state: Any, principals: dict[str, Any]) -> dict[str, Any]:
    """Each real principal id with the simulated identity that stands for it: the same id where
    msi could keep it."""
    from msi_cli.core import lookup

    out: dict[str, Any] = {}
    for real, where in principals.items():
        ref = where.get("resource") or where.get("identity")
        sub, group, name = ref.rsplit("/", 2)
        simulated = None
        try:
            if "resource" in where:
                simulated = lookup.resource(state, name, group, sub).system_principal_id
            else:
                simulated = lookup.user_identity(state, name, group, lookup.subscription(state, sub).id).principal_id
        except MsiError:
            simulated = None
        out[real] = {**where, "simulatedPrincipalId": simulated, "kept": simulated == real}
    return out
