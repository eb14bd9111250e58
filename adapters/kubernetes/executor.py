"""The core's `Cluster` port on the official Kubernetes client: one `KubernetesCluster` per cluster.

A thin facade over the jobs, each in its module:
- connect.py: a kubeconfig context, the pod's service account, or a URL and token → an ApiClient;
- calls.py: every call off the event loop, with the timeout, retries, and the one error mapping;
- blast.py: the facts read when a request is made; writes.py and drain.py: each operation;
- observe.py: verification's looks at the effect.

Nothing is global: an executor holds its own ApiClient, API objects and facts cache, so several
clusters (one kubeconfig context each) are several executors side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TypedDict, Unpack

import structlog
from kubernetes import client

from adapters.kubernetes import connect
from adapters.kubernetes.blast import FactReader
from adapters.kubernetes.calls import JSON, RETRY_DELAYS_S, Calls
from adapters.kubernetes.drain import DRAIN_TIMEOUT_S, RETRY_FIRST_S, Drain
from adapters.kubernetes.failures import Attempt
from adapters.kubernetes.observe import Observe
from adapters.kubernetes.preview import Previewer
from adapters.kubernetes.writes import APPLY, Writes
from core.domain.access import Access
from core.domain.changes import Preview
from core.domain.cluster import ClusterResult, TargetFacts
from core.domain.operations import CordonOp, DrainOp, Identity, Operation, RollbackOp, UncordonOp
from core.domain.verify import Progress

log = structlog.get_logger(__name__)

FACTS_TTL_S = 2.0
FACTS_CACHE_SIZE = 512

_FactsKey = tuple[str, str, str | None]  # (operation kind, target, namespace)
_TargetKey = tuple[str, str | None]  # (target, namespace)

_APPLY = APPLY  # what `apply` does for each kind of operation (writes.py)


class Options(TypedDict, total=False):
    """How an executor calls its cluster; the defaults suit a real API server."""

    request_timeout: float
    conflict_retries: int
    retry_delays: tuple[float, ...]
    drain_timeout: float
    drain_retry: float


class KubernetesCluster:
    """Implements `core.domain.cluster.Cluster` against one API server (or the sandbox)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        name: str | None = None,
        request_timeout: float = 10.0,
        conflict_retries: int = 3,
        retry_delays: tuple[float, ...] = RETRY_DELAYS_S,
        drain_timeout: float = DRAIN_TIMEOUT_S,
        drain_retry: float = RETRY_FIRST_S,
    ) -> None:
        self.name = name  # the cluster's name in the policy, or its kubeconfig context
        self._options: Options = {"request_timeout": request_timeout, "conflict_retries": conflict_retries,
                                  "retry_delays": retry_delays, "drain_timeout": drain_timeout,
                                  "drain_retry": drain_retry}
        self._as: dict[Identity, KubernetesCluster] = {}
        self._calls = Calls(api_client, request_timeout=request_timeout, retry_delays=retry_delays)
        drain = Drain(self._calls, timeout=drain_timeout, retry=drain_retry)
        self._writes = Writes(self._calls, drain, conflict_retries=conflict_retries)
        self._observe = Observe(self._calls, drain)
        self._facts = FactReader(self._calls, services_ttl=FACTS_TTL_S)
        self._previewer = Previewer(self._calls)
        self._facts_cache: dict[_FactsKey, tuple[float, TargetFacts]] = {}
        # The target objects those facts were read from, for the preview that follows (same TTL).
        self._targets: dict[_TargetKey, tuple[float, JSON]] = {}

    # ---- construction: one executor per cluster

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None,
                        **options: Unpack[Options]) -> KubernetesCluster:
        """One context of a kubeconfig (`path`, else $KUBECONFIG, else ~/.kube/config); the pod's
        service account when there is none and signoff runs inside a cluster."""
        return cls(connect.from_kubeconfig(path, context), name=context, **options)

    @classmethod
    def in_cluster(cls, **options: Unpack[Options]) -> KubernetesCluster:
        """The pod's service account token and the cluster CA."""
        return cls(connect.in_cluster(), **options)

    @classmethod
    def for_url(cls, url: str, token: str, **options: Unpack[Options]) -> KubernetesCluster:
        """A bearer token against a base URL: the sandbox, or a plain HTTP proxy."""
        return cls(connect.for_url(url, token), **options)

    @property
    def api_client(self) -> client.ApiClient:
        return self._calls.api_client

    @property
    def _apis(self) -> tuple[client.AppsV1Api, client.CoreV1Api] | None:
        return self._calls.apis

    def close(self) -> None:
        for other in self._as.values():
            other.close()
        self._observe.close()
        self._calls.close()
        self.api_client.close()  # type: ignore[no-untyped-call]

    # ---- as the requester (`[execution] as = "requester"`)

    def impersonating(self, identity: Identity) -> KubernetesCluster:
        """This cluster with every call made as `identity` (one executor per identity, kept for reuse)."""
        found = self._as.get(identity)
        if found is None:
            client_as = connect.impersonating(self.api_client, identity.user, identity.groups)
            found = self._as[identity] = KubernetesCluster(client_as, name=self.name, **self._options)
            found._observe.wake = self._observe.wake
        return found

    async def allowed(self, op: Operation, access: Access) -> bool:
        """A SubjectAccessReview, made as signoff: may the operation's identity do `access`?"""
        if op.identity is None:
            return True
        attributes = {key: value for key, value in access.model_dump().items() if value}
        with self._calls.mapped(Attempt(op=op, inspecting=True), "kubernetes.review_failed", verb=access.verb):
            answer = await self._calls.review(op.identity.user, op.identity.groups, attributes)
        allowed = bool((answer.get("status") or {}).get("allowed"))
        log.info("kubernetes.reviewed", user=op.identity.user, verb=access.verb, resource=access.resource,
                 namespace=access.namespace, allowed=allowed)
        return allowed

    async def warm_up(self) -> None:
        """Build the Apps and Core API objects in a worker thread, so that no caller on the event loop does."""
        await self._calls.warm_up()

    # ---- the port

    async def check(self) -> str:
        return await self._calls.server_version()

    async def inspect(self, op: Operation, *, fresh: bool = False) -> TargetFacts:
        # An alert's decision and the request it proposes read the same target within milliseconds;
        # a short-lived cache halves the API calls. A real write through `apply` drops what it can change.
        key = (op.kind, op.target_ref, op.namespace)
        now = time.monotonic()
        cached = self._facts_cache.get(key)
        if cached is not None and cached[0] > now and not fresh:
            return cached[1]
        await self.warm_up()
        with self._calls.mapped(Attempt(op=op, inspecting=True), "kubernetes.inspect_failed",
                                target=op.target_ref, namespace=op.namespace):
            facts, target = await self._facts.read(op, fresh=fresh)
        if len(self._facts_cache) > FACTS_CACHE_SIZE:
            self._facts_cache.clear()
        if len(self._targets) > FACTS_CACHE_SIZE:
            self._targets.clear()
        self._facts_cache[key] = (now + FACTS_TTL_S, facts)
        if target is not None:
            self._targets[(op.target_ref, op.namespace)] = (now + FACTS_TTL_S, target)
        return facts

    async def read_target(self, op: Operation) -> TargetFacts:
        """The target alone, read now (core/app/clusters.py `TargetReading`): before a request runs, its pin
        and the risk floor need no more than that. Not kept in the facts cache (they lack the pods and services);
        what the cache holds of the target is dropped instead: it may be what this read found changed, and a
        request asked again right after a stale one must pin the target as it is now."""
        await self.warm_up()
        with self._calls.mapped(Attempt(op=op, inspecting=True), "kubernetes.inspect_failed",
                                target=op.target_ref, namespace=op.namespace):
            facts = await self._facts.target(op)
        self._targets.pop((op.target_ref, op.namespace), None)
        for key in [key for key in self._facts_cache if key[1:] == (op.target_ref, op.namespace)]:
            del self._facts_cache[key]
        return facts

    async def apply(self, op: Operation, *, dry_run: bool, stamp: Mapping[str, str] | None = None) -> ClusterResult:
        attempt = Attempt(op=op, dry_run=dry_run, stamp=dict(stamp or {}))
        await self.warm_up()
        try:
            with self._calls.mapped(attempt, "kubernetes.apply_failed", op=op.kind, target=op.target_ref,
                                    namespace=op.namespace, dry_run=dry_run):
                result = await APPLY[type(op)](self._writes, op, attempt)
        finally:
            if not dry_run:  # after the call, failed or not: facts read while it was under way are of before
                self._forget(op)
        log.info("kubernetes.applied", op=op.kind, target=op.target_ref, namespace=op.namespace, dry_run=dry_run,
                 resource_version=result.resource_version, generation=result.generation)
        return result

    def _forget(self, op: Operation) -> None:
        """What a real write can change: the facts of every target in its namespace (their pods, replicas and
        services) and of every node (the pods on it); a cordon only its node's; a drain everything. Of the
        target objects, only the one written (a drain: all, its pods are evicted)."""
        if isinstance(op, DrainOp):
            self._facts_cache.clear()
            self._targets.clear()
            return
        self._targets.pop((op.target_ref, op.namespace), None)
        if isinstance(op, CordonOp | UncordonOp):
            changed = [key for key in self._facts_cache if key[1] == op.target_ref]
        else:
            changed = [key for key in self._facts_cache if key[2] in (op.namespace, None)]
        for key in changed:
            del self._facts_cache[key]

    async def preview(self, op: Operation) -> Preview:
        """What `op` would change (a server-side dry run, made when the request is made). Raises ClusterError."""
        await self.warm_up()
        with self._calls.mapped(Attempt(op=op, dry_run=True), "kubernetes.preview_failed", op=op.kind,
                                target=op.target_ref, namespace=op.namespace):
            return await self._previewer.preview(op, self._read_just_now(op))

    def _read_just_now(self, op: Operation) -> JSON | None:
        """The target as `inspect` read it for the same request (None: read it again). Not for a rollback: its
        dry run is guarded by the resourceVersion it read, which a read up to FACTS_TTL_S old could fail."""
        cached = self._targets.get((op.target_ref, op.namespace))
        if cached is None or cached[0] <= time.monotonic() or isinstance(op, RollbackOp):
            return None
        return cached[1]

    async def observe(self, op: Operation, since: ClusterResult, *, reasons: bool = False) -> Progress:
        await self.warm_up()
        with self._calls.mapped(Attempt(op=op, inspecting=True), "kubernetes.observe_failed",
                                target=op.target_ref, namespace=op.namespace):
            progress = await self._observe.progress(op, since)
            if reasons and not progress.done:
                # Asked at the end: the follow is over whatever the pods say.
                self._observe.stop_following(op, since)
                progress = progress.model_copy(update={"pods": await self._observe.troubles(op, since)})
        return progress

    def following(self, op: Operation, since: ClusterResult) -> bool:
        return self._observe.following(op, since)

    def on_change(self, wake: Callable[[str], None]) -> None:
        """`wake(key)` whenever a followed rollout changed (`Progress.follow` is the key); called on the loop."""
        self._observe.wake = wake

    async def evictable_pods(self, node: str) -> tuple[str, ...]:
        """`namespace/name` of the pods a drain of this node would still have to evict: empty
        once the node is drained (the verification of a drain asks exactly this)."""
        await self.warm_up()
        with self._calls.mapped(Attempt(op=DrainOp(name=node), inspecting=True)):
            return await self._observe.evictable_pods(node)
