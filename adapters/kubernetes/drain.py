"""`kubectl drain --ignore-daemonsets`: what a drain evicts (pure, from the pods' JSON), and the eviction.

DaemonSet pods stay (their controller would put them straight back, and they tolerate the
cordon), mirror pods stay (the kubelet owns them; the API server cannot delete them), and every
other pod is evicted through the Eviction API so that PodDisruptionBudgets are respected. Pods
already terminating are still waited for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import structlog
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from adapters.kubernetes.calls import JSON, Calls, meta, result, spec
from adapters.kubernetes.failures import Attempt
from adapters.kubernetes.stamp import stamped
from core.domain.cluster import ClusterRejected, ClusterResult
from core.domain.operations import DrainOp

log = structlog.get_logger(__name__)

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# How long to wait before asking again after a 429 (a budget that allows no disruption now);
# doubles each round up to the cap, as a person re-running `kubectl drain` would.
RETRY_FIRST_S = 0.2
RETRY_CAP_S = 5.0
# The drain's own deadline (the real call waits this long at most): inside the execution lease
# (SIGNOFF_EXECUTION_LEASE, 120 s by default), so a slow drain is never swept as interrupted.
DRAIN_TIMEOUT_S = 90.0


def pod_key(pod: JSON) -> str:
    """`namespace/name` of a pod."""
    found = meta(pod)
    return f"{found.get('namespace')}/{found.get('name')}" if found else ""


def controller_ref(obj: JSON) -> JSON | None:
    return next((r for r in meta(obj).get("ownerReferences") or [] if r.get("controller")), None)


def skip_reason(pod: JSON) -> str | None:
    """Why a drain leaves this pod alone, or None when it is evicted."""
    if MIRROR_ANNOTATION in (meta(pod).get("annotations") or {}):
        return "mirror pod"
    ref = controller_ref(pod)
    if ref is not None and ref.get("kind") == "DaemonSet":
        return "DaemonSet pod"
    return None


def evictable(pods: Iterable[JSON]) -> list[JSON]:
    """The pods a drain evicts, by namespace and name."""
    return sorted((p for p in pods if skip_reason(p) is None), key=pod_key)


def listing(keys: Iterable[str], limit: int = 5) -> str:
    """`a, b, c (+4 more)` for a sentence."""
    shown = list(keys)
    text = ", ".join(shown[:limit])
    return text + (f" (+{len(shown) - limit} more)" if len(shown) > limit else "")


class Drain:
    """Cordon, then evict every other pod of the node; a 429 is a PodDisruptionBudget that allows no
    disruption right now: asked again, with backoff, until the drain's deadline. Then it waits until
    the evicted pods are gone."""

    def __init__(self, calls: Calls, *, timeout: float = DRAIN_TIMEOUT_S, retry: float = RETRY_FIRST_S) -> None:
        self._calls = calls
        self._timeout = timeout
        self._retry = retry

    @property
    def _core(self) -> client.CoreV1Api:
        return self._calls.core

    async def node_pods(self, node: str) -> list[JSON]:
        listed = await self._calls.read(self._core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}")
        return list(listed.get("items") or [])

    async def run(self, op: DrainOp, attempt: Attempt) -> ClusterResult:
        prefix = "dry run: " if attempt.dry_run else ""
        node = await self._calls.read(self._core.read_node, op.name)
        if not spec(node).get("unschedulable") or attempt.stamp:  # cordoned and stamped in one Node patch
            await self._calls.write(attempt, self._core.patch_node, op.name,
                                    stamped({"spec": {"unschedulable": True}}, attempt))
        on_node = await self.node_pods(op.name)
        pods = evictable(on_node)
        skipped = len(on_node) - len(pods)
        left_alone = f"; {skipped} DaemonSet or mirror pod(s) stay" if skipped else ""
        if attempt.dry_run:
            blocked = [pod_key(p) for p in pods if not await self._evict(attempt, p)]
            waits = f"; a PodDisruptionBudget holds back {listing(blocked)} for now" if blocked else ""
            summary = (f"{prefix}{op.target_ref} would be cordoned and {len(pods)} pod(s) evicted"
                       f"{': ' + listing(pod_key(p) for p in pods) if pods else ''}{waits}{left_alone}")
            return result(summary, node)
        deadline = time.monotonic() + self._timeout
        remaining = {pod_key(p): p for p in pods}
        evicted: dict[str, str | None] = {}  # key → uid, to tell a pod from its namesake replacement
        delay = self._retry
        while True:
            for key, pod in list(remaining.items()):
                if await self._evict(attempt, pod):
                    evicted[key] = meta(pod).get("uid")
                    del remaining[key]
            if not remaining:
                break
            if time.monotonic() >= deadline:
                raise ClusterRejected(
                    f"{op.target_ref} is cordoned and {len(evicted)} pod(s) were evicted, but after "
                    f"{self._timeout:g} s a PodDisruptionBudget still refuses to evict "
                    f"{listing(remaining)} (429 TooManyRequests). Those pods still run on the node.",
                    reason="TooManyRequests",
                    status=429,
                )
            log.info("kubernetes.drain_waiting", node=op.name, blocked=len(remaining), retry_in=delay)
            await asyncio.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, RETRY_CAP_S)
        await self._wait_gone(op, evicted, deadline)
        return result(f"{op.target_ref} drained: {len(evicted)} pod(s) evicted{left_alone}", node)

    async def _evict(self, attempt: Attempt, pod: JSON) -> bool:
        """POST the pod's eviction: True when accepted (or already gone), False on 429."""
        name, namespace = meta(pod).get("name"), meta(pod).get("namespace")
        body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                                "metadata": {"name": name, "namespace": namespace}}
        try:
            # A 429 here is a PodDisruptionBudget's "not yet", which the drain loop waits out itself.
            await self._calls.write(attempt, self._core.create_namespaced_pod_eviction, name, namespace, body,
                                    retry_safe=True, retry_429=False)
        except ApiException as error:
            if error.status == 429:
                return False
            if error.status == 404:
                return True  # gone already: nothing left to evict
            raise
        return True

    async def _wait_gone(self, op: DrainOp, evicted: dict[str, str | None], deadline: float) -> None:
        """Evicted pods terminate over their grace period; the drain is done when none is left."""
        delay = self._retry
        while True:
            left = [key for key, uid in (await self.evictable_on(op.name)).items() if evicted.get(key, "") == uid]
            if not left:
                return
            if time.monotonic() >= deadline:
                raise ClusterRejected(
                    f"{op.target_ref}: {len(left)} evicted pod(s) were still terminating after "
                    f"{self._timeout:g} s: {listing(left)}.",
                    reason="Timeout",
                )
            await asyncio.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, RETRY_CAP_S)

    async def evictable_on(self, node: str) -> dict[str, str | None]:
        """`namespace/name` → uid of the pods a drain of this node would still have to evict."""
        return {pod_key(p): meta(p).get("uid") for p in await self.node_pods(node) if skip_reason(p) is None}
