"""Property tests: random sequences of lifecycle operations, applied through the core as the CLI
applies them (one transaction each: a refused operation changes nothing), keep the invariants.

Each operation is a kind and a seed; the seed drives the choices inside it (which resource, which
identities, which flags), picking mostly existing objects so that operations take effect, and now
and then a bare name from a small pool, so that duplicates, ambiguity and not-found happen too.
"""

from __future__ import annotations

import copy
import os
import random
import shutil
import tempfile
import tomllib
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from msi_cli.core import arm, credentials, lifecycle, lookup, timeline
from msi_cli.core.directory import create_subscription, create_tenant, fresh_state
from msi_cli.core.timefmt import DAY, iso, real_now
from msi_cli.core.context import Ctx
from msi_cli.core.model import SYSTEM, USER, State
from msi_cli.errors import MsiError
from msi_cli.store import codec
from msi_cli.store.keyring import FileKeyRing
from msi_cli.store.statefile import StateFile

RESOURCE_NAMES = ["app1", "app2", "app3", "shared1"]  # valid for every type
IDENTITY_NAMES = ["id-1", "id-2", "id-3", "shared1"]  # 'shared1' is also a resource name
GROUPS = [None, "rg2"]
TYPES = sorted(arm.RESOURCE_TYPES)


class World:
    """The state as a sequence of CLI invocations would leave it, with what was ever seen."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.keys_dir = directory / "keys"
        self.base = real_now()
        self.now = self.base
        self.state: State = fresh_state(iso(self.now))
        self.ever_principals: set[str] = set()
        self.ever_clients: set[str] = set()
        self.live_principals: set[str] = set()
        self.applied = 0
        # a second directory from the start, so that identities can be in the wrong tenant
        assert self.apply(lambda ctx: create_tenant(ctx, "T1"))
        assert self.apply(lambda ctx: create_subscription(ctx, "s1", "T1"))
        self.check()

    # ---- one transaction -------------------------------------------------------------------------

    def apply(self, op) -> bool:
        """Run `op` on a copy of the state, as a transaction: kept if it succeeds, dropped (with the
        keys it made) if the simulated platform refuses it. Anything but MsiError is a bug."""
        work = copy.deepcopy(self.state)
        keys = FileKeyRing(self.keys_dir)
        ctx = Ctx(work, self.now, keys)
        try:
            credentials.roll_due(ctx)
            op(ctx)
        except MsiError:
            keys.discard_new()
            return False
        self.state = work
        self.now += 1
        self.applied += 1
        return True

    # ---- choices ---------------------------------------------------------------------------------

    def users(self) -> list:
        return sorted(lookup.user_identities(self.state), key=lambda i: i.resource_id)

    def identity_refs(self, rnd: random.Random, most: int = 2) -> list[str]:
        """User-assigned identities by name or id (perhaps in another tenant), now and then a
        missing one."""
        refs = []
        for _ in range(rnd.randint(0, most)):
            if self.users() and rnd.random() < 0.9:
                identity = rnd.choice(self.users())
                refs.append(rnd.choice([identity.resource_id, identity.name]))
            else:
                refs.append(rnd.choice(IDENTITY_NAMES))
        return refs

    def resource_id(self, rnd: random.Random) -> str:
        return rnd.choice(sorted(r.id for r in self.state.resources.values()))

    def subscription(self, rnd: random.Random) -> str | None:
        return rnd.choice([None] + sorted(s.name for s in self.state.subscriptions.values()))

    # ---- operations ------------------------------------------------------------------------------

    def create_directory(self, rnd: random.Random) -> None:
        name = rnd.choice(["T1", "T2"])
        self.apply(lambda ctx: create_tenant(ctx, name))
        sub = rnd.choice(["s1", "s2", "s3"])
        tenant = rnd.choice([None, "T-missing"] + sorted(t.name for t in self.state.tenants.values()))
        self.apply(lambda ctx: create_subscription(ctx, sub, tenant))

    def create_resource(self, rnd: random.Random) -> None:
        name, type_key, group = rnd.choice(RESOURCE_NAMES), rnd.choice(TYPES), rnd.choice(GROUPS)
        sub, system, users = self.subscription(rnd), rnd.random() < 0.5, self.identity_refs(rnd)
        self.apply(lambda ctx: lifecycle.create_resource(ctx, name, type_key, group, sub, None, system, users))

    def create_identity(self, rnd: random.Random) -> None:
        name, group, sub = rnd.choice(IDENTITY_NAMES), rnd.choice(GROUPS), self.subscription(rnd)
        self.apply(lambda ctx: lifecycle.create_identity(ctx, name, group, sub, None))

    def attach(self, rnd: random.Random) -> None:
        """A user-assigned identity to a resource of its tenant that supports identities: allowed."""
        if not self.users():
            return
        identity = rnd.choice(self.users())
        hosts = sorted(
            r.id
            for r in self.state.resources.values()
            if r.rtype.supports_identity and self.state.subscriptions[r.subscription_id].tenant_id == identity.tenant_id
            # not over the dangling entry of an earlier identity of the same id: that is removed first
            and all(u.principal_id == identity.principal_id for u in r.user_assigned if u.resource_id.lower() == identity.resource_id.lower())
        )
        if hosts:
            rid = rnd.choice(hosts)
            assert self.apply(lambda ctx: lifecycle.assign(ctx, lookup.resource(ctx.state, rid), False, [identity.resource_id]))
            assert identity.resource_id in lookup.resource(self.state, rid).user_identity_ids

    def assign(self, rnd: random.Random) -> None:
        if self.state.resources:
            rid, system, users = self.resource_id(rnd), rnd.random() < 0.5, self.identity_refs(rnd)
            self.apply(lambda ctx: lifecycle.assign(ctx, lookup.resource(ctx.state, rid), system, users))

    def unassign(self, rnd: random.Random) -> None:
        if self.state.resources:
            rid, system = self.resource_id(rnd), rnd.random() < 0.5
            attached = lookup.resource(self.state, rid).user_identity_ids
            users = rnd.sample(attached, rnd.randint(0, len(attached)))
            if rnd.random() < 0.2:
                users += self.identity_refs(rnd, most=1)  # perhaps one that is not attached
            self.apply(lambda ctx: lifecycle.unassign(ctx, lookup.resource(ctx.state, rid), system, users))

    def reenable(self, rnd: random.Random) -> None:
        """Disable then enable the system-assigned identity: a new one each time."""
        if not self.state.resources:
            return
        rid = self.resource_id(rnd)
        before = lookup.resource(self.state, rid).system_principal_id
        if self.apply(lambda ctx: lifecycle.unassign(ctx, lookup.resource(ctx.state, rid), True, [])):
            assert self.apply(lambda ctx: lifecycle.assign(ctx, lookup.resource(ctx.state, rid), False, []))
            after = lookup.resource(self.state, rid).system_principal_id
            assert after is not None and after != before
            assert after not in self.ever_principals
            assert self.state.identities[after].client_id not in self.ever_clients

    def delete(self, rnd: random.Random) -> None:
        ids = sorted(r.id for r in self.state.resources.values()) + [i.resource_id for i in self.users()]
        live = {i.resource_id for i in self.users()}
        attached = sorted({rid for r in self.state.resources.values() for rid in r.user_identity_ids if rid in live})
        if attached and rnd.random() < 0.5:
            ids = attached  # the interesting case: an identity that resources still hold
        if ids:
            target = rnd.choice(ids)
            assert self.apply(lambda ctx: lifecycle.delete(ctx, lookup.target(ctx.state, target)))

    def by_name(self, rnd: random.Random) -> None:
        """assign, unassign or delete by bare name: may be ambiguous or not found."""
        name, group = rnd.choice(RESOURCE_NAMES + IDENTITY_NAMES), rnd.choice(GROUPS)
        system, users = rnd.random() < 0.5, self.identity_refs(rnd)
        op = rnd.choice(
            [
                lambda ctx: lifecycle.assign(ctx, lookup.resource(ctx.state, name, group), system, users),
                lambda ctx: lifecycle.unassign(ctx, lookup.resource(ctx.state, name, group), system, users),
                lambda ctx: lifecycle.delete(ctx, lookup.target(ctx.state, name, group)),
            ]
        )
        self.apply(op)

    def advance_clock(self, rnd: random.Random) -> None:
        """Time passes (as `msi clock advance`); the transaction rolls certificates."""
        self.now += rnd.randint(1, 100) * DAY
        self.state.clock_offset = self.now - self.base
        assert self.apply(lambda ctx: None)

    def move_clock(self, rnd: random.Random) -> None:
        """`msi clock advance|set|reset`, forward or back: every identity keeps a certificate valid at
        the new time (checked with the invariants)."""
        offset = rnd.choice([0, self.state.clock_offset + rnd.randint(-100, 100) * DAY])
        moved: list[int] = []

        def op(ctx):
            timeline.set_offset(ctx, offset)
            moved.append(ctx.now)

        if self.apply(op):
            self.now = moved[0] + 1

    def save_and_reload(self, rnd: random.Random) -> None:
        """Through the real store: save, read back (from the cache, then from the TOML), go on."""
        path = self.dir / "state" / "state.toml"
        sf = StateFile(path)
        with sf.transaction() as ctx:
            ctx.state = copy.deepcopy(self.state)
        assert StateFile(path).read() == self.state  # served by the parse cache
        sf.cache_path.unlink()
        from_toml = StateFile(path).read()
        assert from_toml == self.state
        assert codec.load(codec.upgrade(tomllib.loads(path.read_text()))) == self.state
        self.state = from_toml

    # ---- invariants ------------------------------------------------------------------------------

    def check(self) -> None:
        s = self.state

        # each identity has exactly one principal, and each principal one identity
        assert set(s.identities) == set(s.principals)
        for pid, identity in s.identities.items():
            sp = s.principals[pid]
            assert identity.principal_id == pid == sp.id
            assert sp.app_id == identity.client_id
            assert sp.tenant_id == identity.tenant_id
            explicit = "isExplicit=True" if identity.kind == USER else "isExplicit=False"
            assert sp.alternative_names == [explicit, identity.resource_id]
        clients = [i.client_id for i in s.identities.values()]
        assert len(clients) == len(set(clients))
        assert not set(clients) & set(s.identities)

        # a system-assigned identity belongs to exactly one live resource, the one it was made for
        for pid, identity in s.identities.items():
            if identity.kind == SYSTEM:
                owners = [r for r in s.resources.values() if r.system_principal_id == pid]
                assert len(owners) == 1, (pid, owners)
                assert owners[0].id.lower() == identity.resource_id.lower()

        # a resource's user-assigned entries: each names its live identity (same id, principal and
        # client, from the resource's tenant), or is the dangling entry of a deleted identity (its
        # principal gone for good, never another identity's); none is held twice
        users = {i.resource_id.lower(): i for i in lookup.user_identities(s)}
        for res in s.resources.values():
            if res.system_principal_id is not None:
                assert s.identities[res.system_principal_id].kind == SYSTEM
            lowered = [rid.lower() for rid in res.user_identity_ids]
            assert len(lowered) == len(set(lowered))
            tenant = s.subscriptions[res.subscription_id].tenant_id
            for entry in res.user_assigned:
                live = s.identities.get(entry.principal_id)
                if live is not None:
                    assert live is users.get(entry.resource_id.lower()), (res.name, entry)
                    assert live.client_id == entry.client_id and live.tenant_id == tenant
                else:
                    assert entry.principal_id in self.ever_principals, (res.name, entry)  # dangling
                    assert entry.principal_id not in s.principals
            if not res.rtype.supports_identity:
                assert res.system_principal_id is None and not res.user_identity_ids

        # principal (and client) ids are never reused, over the whole sequence
        current = set(s.identities)
        new = current - self.live_principals
        assert not new & self.ever_principals
        new_clients = {s.identities[pid].client_id for pid in new}
        assert not new_clients & self.ever_clients
        self.ever_principals |= current
        self.ever_clients |= set(clients)
        self.live_principals = current

        # every principal has a certificate in force, whose key is in the key store
        for sp in s.principals.values():
            assert credentials.current_certificate(sp, self.now - 1) is not None
            for cred in sp.key_credentials:
                assert (self.keys_dir / f"{cred.thumbprint}.pem").exists()

        # load(dump(state)) == state
        doc = codec.dump(s)
        assert codec.load(copy.deepcopy(doc)) == s
        assert codec.dump(codec.load(doc)) == doc


OPERATIONS = [
    "create_resource",
    "create_identity",
    "attach",
    "assign",
    "unassign",
    "reenable",
    "delete",
    "by_name",
    "create_directory",
    "advance_clock",
    "move_clock",
    "save_and_reload",
]
# MSI_PROPERTY_EXAMPLES=1000 runs the machine longer than the default (about 10 s on 2 cores).
EXAMPLES = int(os.environ.get("MSI_PROPERTY_EXAMPLES", "60"))


class Lifecycle(RuleBasedStateMachine):
    """The World as a Hypothesis state machine: each step is one operation with the seed that
    drives its choices, the invariants are checked after every step, and a failure shrinks to a
    short, readable list of steps such as `state.delete(seed=3)`."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World(Path(tempfile.mkdtemp(prefix="msi-property-")))

    @invariant()
    def invariants_hold(self) -> None:
        self.world.check()

    def teardown(self) -> None:
        shutil.rmtree(self.world.dir, ignore_errors=True)


def _step(kind: str):
    def step(self: Lifecycle, seed: int) -> None:
        getattr(self.world, kind)(random.Random(seed))

    step.__name__ = kind
    return rule(seed=st.integers(min_value=0, max_value=2**32 - 1))(step)


for _kind in OPERATIONS:
    setattr(Lifecycle, _kind, _step(_kind))

Lifecycle.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_random_operation_sequences_keep_the_invariants = Lifecycle.TestCase


def test_the_sequences_exercise_the_rules(tmp_path):
    """A fixed long sequence reaches every kind of operation with effect (so the property above
    is not passing on sequences that do nothing)."""
    world = World(tmp_path)
    rnd = random.Random(20261127)
    deleted_attached = reenabled = dangling = 0
    for _ in range(400):
        kind = rnd.choice(OPERATIONS[:-1])  # save_and_reload is checked above
        if kind == "delete":
            attached = {rid.lower() for r in world.state.resources.values() for rid in r.user_identity_ids}
            before = {i.resource_id.lower() for i in world.users()}
        before_applied = world.applied
        getattr(world, kind)(random.Random(rnd.getrandbits(32)))
        world.check()
        if kind == "delete" and (before - {i.resource_id.lower() for i in world.users()}) & attached:
            deleted_attached += 1
        if kind == "reenable" and world.applied == before_applied + 2:
            reenabled += 1
        dangling += any(u.principal_id not in world.state.identities for r in world.state.resources.values() for u in r.user_assigned)
    assert deleted_attached >= 3
    assert dangling >= 10  # deleted identities' entries stay on resources for a while
    assert reenabled >= 3
    assert len(world.ever_principals) >= 30
