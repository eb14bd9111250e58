"""The clusters signoff serves, one executor each, behind the one `Cluster` port the core calls.

Every call carries its operation, and the operation names its cluster (None: the default one), so the blast
radius, the floor check, the dry run, the write and verification all reach the request's own cluster and
never another. Each cluster has its own limit of calls in flight: a slow or unreachable cluster fills its own
slots, never the threads the other clusters' calls run on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from core.domain.access import Access
from core.domain.approvals import ApprovalRequest
from core.domain.changes import Preview
from core.domain.cluster import ClusterResult, ClusterUnavailable, TargetFacts
from core.domain.clusters import UnknownCluster, check_channel, choose_cluster, default_cluster
from core.domain.operations import Identity, Operation
from core.domain.policy import Policy
from core.domain.request_parts import Place
from core.domain.verify import Progress
from core.ports import Cluster

CALLS_IN_FLIGHT_PER_CLUSTER = 4


@runtime_checkable
class Impersonating(Protocol):
    """A cluster that can make its calls as someone else (`Impersonate-User`, `Impersonate-Group`) and ask
    whether they may (a SubjectAccessReview, made as signoff)."""

    def impersonating(self, identity: Identity) -> Cluster: ...

    async def allowed(self, op: Operation, access: Access) -> bool: ...


@runtime_checkable
class Followed(Protocol):
    """A cluster that follows rollouts with watches and says when one changed (`Progress.follow` is the key)."""

    def on_change(self, wake: Callable[[str], None]) -> None: ...

    def following(self, op: Operation, since: ClusterResult) -> bool:
        """Whether a look at this effect reads the watches' view (no call to the API server)."""
        ...


@runtime_checkable
class Previewing(Protocol):
    """A cluster that can show what an operation would change (a server-side dry run; core/app/preview.py)."""

    async def preview(self, op: Operation) -> Preview: ...


@runtime_checkable
class TargetReading(Protocol):
    """A cluster that can read an operation's target alone, without what depends on it (its pods, services)."""

    async def read_target(self, op: Operation) -> TargetFacts:
        """Read now (never cached): whether the target exists, its replicas, its note and what a request pins
        of it; pods, services and volumes stay empty."""
        ...


async def target_facts(cluster: Cluster, op: Operation) -> TargetFacts:
    """The target as it is now, for what is checked before a request runs (its pin, the risk floor): read
    alone where the cluster can, else with everything `inspect` reads."""
    if isinstance(cluster, TargetReading):
        return await cluster.read_target(op)
    return await cluster.inspect(op, fresh=True)


class ClusterRegistry:
    """Implements the `Cluster` port by routing each call to the operation's cluster."""

    def on_change(self, wake: Callable[[str], None]) -> None:
        for member in self._members.values():
            if isinstance(member, Followed):
                member.on_change(wake)

    def following(self, op: Operation, since: ClusterResult) -> bool:
        cluster, _ = self._route(op)
        return isinstance(cluster, Followed) and cluster.following(op, since)

    def __init__(self, members: Mapping[str, Cluster], *, default: str | None,
                 in_flight: int = CALLS_IN_FLIGHT_PER_CLUSTER) -> None:
        if not members:
            raise ValueError("a registry needs at least one cluster")
        self._members = dict(members)
        self.default = default
        self._gates = {name: asyncio.Semaphore(in_flight) for name in self._members}

    @classmethod
    def single(cls, cluster: Cluster, name: str | None = None) -> ClusterRegistry:
        """One cluster, named after its context (`sandbox` for the sandbox) unless told otherwise."""
        chosen = name or getattr(cluster, "name", None) or "sandbox"
        return cls({chosen: cluster}, default=chosen)

    def add(self, name: str, cluster: Cluster) -> None:
        """A cluster a reloaded policy added (bot/reload.py); the ones there stay, with their calls in flight."""
        self._members.setdefault(name, cluster)
        self._gates.setdefault(name, asyncio.Semaphore(CALLS_IN_FLIGHT_PER_CLUSTER))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._members)

    def member(self, name: str | None) -> Cluster:
        chosen = name or self.default
        if chosen is None or chosen not in self._members:
            known = ", ".join(self._members)
            raise UnknownCluster(f"There is no cluster `{chosen or '(none named)'}`; the clusters are: {known}.")
        return self._members[chosen]

    def name_of(self, op: Operation) -> str:
        """The cluster an operation runs on, by name."""
        chosen = op.cluster or self.default
        return chosen if chosen is not None else "unknown"

    def _route(self, op: Operation) -> tuple[Cluster, asyncio.Semaphore]:
        try:
            cluster = self.member(op.cluster)
        except UnknownCluster as exc:
            # A stored request for a cluster the policy no longer has: nothing can run there.
            raise ClusterUnavailable(exc.message, reason="UnknownCluster") from None
        if op.identity is not None:  # every call for the request is made as its requester, or not at all
            if not isinstance(cluster, Impersonating):
                raise ClusterUnavailable(f"cluster {self.name_of(op)} cannot make calls as {op.identity.user}",
                                         reason="NoImpersonation")
            cluster = cluster.impersonating(op.identity)
        return cluster, self._gates[self.name_of(op)]

    async def allowed(self, op: Operation, access: Access) -> bool:
        cluster, gate = self._route(op.model_copy(update={"identity": None}))
        if not isinstance(cluster, Impersonating):
            raise ClusterUnavailable(f"cluster {self.name_of(op)} cannot answer access reviews",
                                     reason="NoAccessReview")
        async with gate:
            return await cluster.allowed(op, access)

    # ---- the port

    async def check(self) -> str:
        versions = [f"{name} {await cluster.check()}" for name, cluster in self._members.items()]
        return ", ".join(versions)

    async def inspect(self, op: Operation, *, fresh: bool = False) -> TargetFacts:
        cluster, gate = self._route(op)
        async with gate:
            return await cluster.inspect(op, fresh=fresh)

    async def read_target(self, op: Operation) -> TargetFacts:
        cluster, gate = self._route(op)
        async with gate:
            return await target_facts(cluster, op)

    async def apply(self, op: Operation, *, dry_run: bool, stamp: Mapping[str, str] | None = None) -> ClusterResult:
        cluster, gate = self._route(op)
        async with gate:
            return await cluster.apply(op, dry_run=dry_run, stamp=stamp)

    async def preview(self, op: Operation) -> Preview | None:
        """What `op` would change; None from a cluster that cannot tell (a test's stand-in)."""
        cluster, gate = self._route(op)
        if not isinstance(cluster, Previewing):
            return None
        async with gate:
            return await cluster.preview(op)

    async def observe(self, op: Operation, since: ClusterResult, *, reasons: bool = False) -> Progress:
        cluster, gate = self._route(op)
        if not reasons and isinstance(cluster, Followed) and cluster.following(op, since):
            return await cluster.observe(op, since)  # no call to make: no place in the gate to wait for
        async with gate:
            return await cluster.observe(op, since, reasons=reasons)


def registry_of(cluster: Cluster) -> ClusterRegistry:
    """The registry behind a `Cluster` (a lone cluster becomes a registry of one)."""
    return cluster if isinstance(cluster, ClusterRegistry) else ClusterRegistry.single(cluster)



def place_request(
    policy: Policy, registry: ClusterRegistry, operation: Operation, *, named: str | None, origin: Place | None,
    defaults: Mapping[str, str],
) -> tuple[Operation, str, dict[str, str]]:
    """The request's cluster (named in its text or by `cluster=`, else the default), refused at once when
    unknown or asked from a channel the cluster does not take requests from; with the operation naming it
    (only when the policy has [clusters]: a single cluster's operations and digests stay as they were) and
    where its cards go."""
    known = tuple(policy.clusters) or registry.names
    default = default_cluster(policy.clusters) if policy.clusters else registry.default
    name = choose_cluster(named=[operation.cluster, named], known=known, default=default)
    spec = policy.clusters.get(name)
    check_channel(name, spec, origin)
    operation = operation.model_copy(update={"cluster": name if policy.clusters else None})
    places = {**defaults, **(spec.places() if spec is not None else {})}
    return operation, name, places


def label_of(request: ApprovalRequest) -> str:
    """The `cluster` label of a request's metrics (`default`: made before several clusters)."""
    return request.cluster or "default"
