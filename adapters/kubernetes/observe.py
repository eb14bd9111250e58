"""Looking at an operation's effect, dispatched by operation type through `PROGRESS`, complete for every
kind at import (see verify.py for the pure judgements). A restart, rollback or scale is followed by
watches (follow.py: three calls for the whole verification, then no call per look) and reports its new
pods; a look at another kind, or at a rollout whose watch broke, reads the target."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from adapters.kubernetes import verify
from adapters.kubernetes.calls import JSON, Calls
from adapters.kubernetes.drain import Drain
from adapters.kubernetes.follow import IDLE_S, Follow, Wake
from adapters.kubernetes.overtaken import unless_overtaken
from core.domain.cluster import ClusterResult
from core.domain.operations import (
    CordonOp,
    DeletePodOp,
    DrainOp,
    Operation,
    OperationType,
    RestartOp,
    RollbackOp,
    ScaleOp,
    UncordonOp,
    by_operation,
)
from core.domain.verify import PodTrouble, Progress


class Observe:
    def __init__(self, calls: Calls, drain: Drain) -> None:
        self._calls = calls
        self._drain = drain
        # Rollouts followed by watches, by `kind/namespace/name@resourceVersion`; `wake` hears of each change.
        self._follows: dict[str, Follow] = {}
        self.wake: Wake | None = None

    @property
    def _apps(self) -> client.AppsV1Api:
        return self._calls.apps

    @property
    def _core(self) -> client.CoreV1Api:
        return self._calls.core

    async def progress(self, op: Operation, since: ClusterResult) -> Progress:
        progress = await PROGRESS[type(op)](self, op, since)
        if progress.done or progress.failed:
            self.stop_following(op, since)
        return progress

    def following(self, op: Operation, since: ClusterResult) -> bool:
        """A look at `op` reads the follow's watches (they began and hold): no call to the API server."""
        follow = self._follows.get(_key(op, since))
        return follow is not None and follow.began and not follow.broken and bool(follow.pods_since)

    def _woken(self, key: str) -> None:
        if self.wake is not None:  # whoever listens now (a service built later on the same cluster)
            self.wake(key)

    def stop_following(self, op: Operation, since: ClusterResult) -> None:
        follow = self._follows.pop(_key(op, since), None)
        if follow is not None:
            follow.stop()

    def close(self) -> None:
        for follow in self._follows.values():
            follow.stop()
        self._follows.clear()

    async def troubles(self, op: Operation, since: ClusterResult) -> tuple[PodTrouble, ...]:
        """The pods that are not Ready and why: one pod list, only when verification fails."""
        if op.namespace is None:
            return ()
        workload = await WATCHED[type(op)](self, op, since)
        if workload is None:
            return ()
        listed = await self._calls.read(self._core.list_namespaced_pod, op.namespace,
                                        label_selector=verify.selector_of(workload))
        return verify.pod_troubles(list(listed.get("items") or []))

    async def evictable_pods(self, node: str) -> tuple[str, ...]:
        return tuple(sorted(await self._drain.evictable_on(node)))

    # ---- per kind

    async def _rollout(self, op: RestartOp | RollbackOp, since: ClusterResult) -> Progress:
        return await self._followed(op, since, None)

    async def _scaled(self, op: ScaleOp, since: ClusterResult) -> Progress:
        return await self._followed(op, since, op.replicas)

    async def _followed(self, op: RestartOp | RollbackOp | ScaleOp, since: ClusterResult,
                        scale_to: int | None) -> Progress:
        """The workload and its new pods: from the follow's watches while they hold (no call), else read."""
        key = _key(op, since)
        follow = self._follows.get(key)
        if follow is None and since.resource_version:
            self._sweep()
            follow = Follow(key, self._calls, reader=self._lister(op.target), pod_lister=self._core.list_namespaced_pod,
                            name=op.name, namespace=op.namespace, wake=self._woken, loop=asyncio.get_running_loop())
            self._follows[key] = follow
        if follow is not None:
            async with follow.starting:  # a look that comes while the watches begin waits for them
                if not follow.began:
                    follow.began = True
                    if await follow.start() and follow.workload is not None:
                        selector = verify.selector_of(follow.workload)
                        listed = await self._pods(op.namespace, selector)
                        if listed is not None:
                            await follow.watch_pods(selector, listed)
            follow.looked_at = time.monotonic()
        if follow is not None and not follow.broken and follow.workload is not None:
            workload, pods, followed = follow.workload, follow.pod_list(), key
        else:  # polling: the watch broke, or could not begin
            workload = await self._workload(op.target, op.name, op.namespace)
            listed = await self._pods(op.namespace, verify.selector_of(workload))
            pods, followed = list((listed or {}).get("items") or []), None
        progress = unless_overtaken(self._judge(op.target, workload, since, scale_to), workload, since,
                                    target=op.target, scale_to=scale_to)
        return progress.model_copy(update={"new_pods": verify.new_pods(pods), "follow": followed})

    async def _pods(self, namespace: str, selector: str) -> JSON | None:
        """The workload's pods; None when the caller may not list them (a requester allowed only the workload,
        `as = "requester"`): the effect is then judged from the workload's own status, without pod reasons."""
        try:
            listed: JSON = await self._calls.read(self._core.list_namespaced_pod, namespace, label_selector=selector)
        except ApiException as refused:
            if refused.status != HTTPStatus.FORBIDDEN:
                raise
            return None
        return listed

    def _lister(self, target: str) -> Callable[..., Any]:
        listers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.list_namespaced_deployment,
            "statefulset": self._apps.list_namespaced_stateful_set,
            "daemonset": self._apps.list_namespaced_daemon_set,
        }
        return listers[target]

    def _sweep(self) -> None:
        """Follows nobody looked at for long belong to verifications that ended elsewhere: stopped."""
        idle = time.monotonic() - IDLE_S
        for key, follow in list(self._follows.items()):
            if follow.looked_at < idle:
                follow.stop()
                del self._follows[key]

    @staticmethod
    def _judge(target: str, workload: JSON, since: ClusterResult, scale_to: int | None) -> Progress:
        if target == "deployment":
            return verify.deployment_progress(workload, since, scale_to=scale_to)
        if target == "statefulset":
            return verify.stateful_set_progress(workload, since, scale_to=scale_to)
        return verify.daemon_set_progress(workload, since)

    async def _replaced(self, op: DeletePodOp, since: ClusterResult) -> Progress:
        pod = await self._calls.read_or_none(self._core.read_namespaced_pod, op.name, op.namespace)
        owner = None
        if since.owner and verify.pod_gone(pod, since):
            owner = await self._owner(since.owner, op.namespace)
        return verify.replacement_progress(pod, owner, since)

    async def _cordoned(self, op: CordonOp | UncordonOp, since: ClusterResult) -> Progress:
        node = await self._calls.read(self._core.read_node, op.name)
        return verify.node_progress(node, unschedulable=isinstance(op, CordonOp))

    async def _drained(self, op: DrainOp, since: ClusterResult) -> Progress:
        return verify.drain_progress(op.name, await self.evictable_pods(op.name))

    # ---- the workload whose pods say why it is not Ready

    async def _own_workload(self, op: RestartOp | ScaleOp | RollbackOp, since: ClusterResult) -> JSON | None:
        return await self._workload(op.target, op.name, op.namespace)

    async def _deleted_pods_owner(self, op: DeletePodOp, since: ClusterResult) -> JSON | None:
        return await self._owner(since.owner, op.namespace) if since.owner else None

    async def _no_workload(self, op: Operation, since: ClusterResult) -> JSON | None:
        return None

    # ---- reads

    async def _workload(self, target: str, name: str, namespace: str) -> JSON:
        readers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.read_namespaced_deployment,
            "statefulset": self._apps.read_namespaced_stateful_set,
            "daemonset": self._apps.read_namespaced_daemon_set,
        }
        return await self._calls.read(readers[target], name, namespace)

    async def _owner(self, owner: str, namespace: str) -> JSON | None:
        """A deleted pod's controlling owner, `ReplicaSet/api-7c9` (the kinds whose pods come back); None
        when it is gone, or of a kind whose pods no controller signoff follows replaces."""
        kind, _, name = owner.partition("/")
        if kind == "ReplicaSet":
            return await self._calls.read_or_none(self._apps.read_namespaced_replica_set, name, namespace)
        if kind == "StatefulSet":
            return await self._calls.read_or_none(self._apps.read_namespaced_stateful_set, name, namespace)
        if kind == "DaemonSet":
            return await self._calls.read_or_none(self._apps.read_namespaced_daemon_set, name, namespace)
        return None


def _key(op: Operation, since: ClusterResult) -> str:
    return f"{op.target}/{op.namespace}/{op.name}@{since.resource_version}"


Look = Callable[[Observe, Any, ClusterResult], Awaitable[Progress]]
Find = Callable[[Observe, Any, ClusterResult], Awaitable[JSON | None]]

# How each kind of operation is seen to hold.
PROGRESS: dict[OperationType, Look] = by_operation({
    RestartOp: Observe._rollout,
    ScaleOp: Observe._scaled,
    RollbackOp: Observe._rollout,
    DeletePodOp: Observe._replaced,
    CordonOp: Observe._cordoned,
    UncordonOp: Observe._cordoned,
    DrainOp: Observe._drained,
})

# Whose pods are listed to say why verification fails.
WATCHED: dict[OperationType, Find] = by_operation({
    RestartOp: Observe._own_workload,
    ScaleOp: Observe._own_workload,
    RollbackOp: Observe._own_workload,
    DeletePodOp: Observe._deleted_pods_owner,
    CordonOp: Observe._no_workload,
    UncordonOp: Observe._no_workload,
    DrainOp: Observe._no_workload,
})
