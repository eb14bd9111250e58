"""The core's `Cluster` port on the official Kubernetes client.

The client is synchronous (urllib3), so every call runs in a worker thread with a request
timeout; nothing here blocks the event loop. Each operation is the API call `kubectl`
would make (see docs/design.md §2), dispatched by operation type; every failure becomes one of
the core's typed errors with a sentence a person can act on (see failures.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from adapters.kubernetes import verify
from adapters.kubernetes.blast import FactReader, selector_string
from adapters.kubernetes.drain import (
    DRAIN_TIMEOUT_S,
    RETRY_CAP_S,
    RETRY_FIRST_S,
    evictable,
    listing,
    pod_key,
    skip_reason,
)
from adapters.kubernetes.failures import Attempt, api_error, translate
from adapters.kubernetes.objects import REVISION
from adapters.kubernetes.objects import revision as revision_of
from adapters.kubernetes.rollback import RollbackPlan, plan_rollback, refuse_if_paused
from core.domain.cluster import ClusterError, ClusterRejected, ClusterResult, ClusterUnavailable, TargetFacts
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

log = structlog.get_logger(__name__)

_T = TypeVar("_T")

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
FACTS_TTL_S = 2.0
FACTS_CACHE_SIZE = 512
MERGE_PATCH = "application/merge-patch+json"
# Backoff before each retry of a call that failed transiently (5xx, 429, a timeout, a dropped connection).
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0)

def _retries() -> urllib3.Retry:
    # Retry only connection failures (the request never left); a write whose answer timed out
    # must not be sent again behind our back, and a retried GET would multiply the timeout.
    return urllib3.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0, backoff_factor=0.1)


class KubernetesCluster:
    """Implements `core.domain.cluster.Cluster` against a real API server (or the sandbox)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        request_timeout: float = 10.0,
        conflict_retries: int = 3,
        retry_delays: tuple[float, ...] = RETRY_DELAYS_S,
        drain_timeout: float = DRAIN_TIMEOUT_S,
        drain_retry: float = RETRY_FIRST_S,
    ) -> None:
        self._api_client = api_client
        self._retry_delays = retry_delays
        self._drain_timeout = drain_timeout
        self._drain_retry = drain_retry
        self._timeout = request_timeout
        self._conflict_retries = conflict_retries
        self._version = client.VersionApi(api_client)
        # AppsV1Api and CoreV1Api import some 300 pydantic models (about half a second of CPU): they are built
        # on first use, in a worker thread, or ahead of it by `warm_up()` once the service listens. `check()`
        # (start-up) needs neither.
        self._apis: tuple[client.AppsV1Api, client.CoreV1Api] | None = None
        self._apis_lock = threading.Lock()
        self._facts_cache: dict[tuple[str, str, str | None], tuple[float, TargetFacts]] = {}

    # ---- construction

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | None = None,
        context: str | None = None,
        *,
        request_timeout: float = 10.0,
    ) -> KubernetesCluster:
        """`path`, else $KUBECONFIG, else ~/.kube/config; the pod's service account when none exists."""
        source = path or os.environ.get("KUBECONFIG")
        if not source:
            default = Path.home() / ".kube" / "config"
            if default.exists():
                source = str(default)
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                return cls.in_cluster(request_timeout=request_timeout)
            else:
                raise ClusterUnavailable(
                    "No Kubernetes configuration found: set KUBECONFIG, create ~/.kube/config, "
                    "or run signoff inside the cluster with a service account.",
                    reason="NoConfiguration",
                )
        configuration = client.Configuration()
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=source,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (config.ConfigException, OSError, ValueError, TypeError) as error:
            raise ClusterUnavailable(
                f"Could not load the kubeconfig {source}" + (f" (context {context})" if context else "") + f": {error}",
                reason="BadConfiguration",
            ) from error
        configuration.retries = _retries()
        log.info("kubernetes.configured", source="kubeconfig", host=configuration.host, context=context)
        return cls(client.ApiClient(configuration), request_timeout=request_timeout)

    @classmethod
    def in_cluster(cls, *, request_timeout: float = 10.0) -> KubernetesCluster:
        """The pod's service account token and the cluster CA."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as error:
            raise ClusterUnavailable(
                f"Not running inside a Kubernetes pod with a service account: {error}",
                reason="BadConfiguration",
            ) from error
        configuration.retries = _retries()
        log.info("kubernetes.configured", source="in-cluster", host=configuration.host)
        return cls(client.ApiClient(configuration), request_timeout=request_timeout)

    @classmethod
    def for_url(
        cls,
        url: str,
        token: str,
        *,
        request_timeout: float = 10.0,
        retry_delays: tuple[float, ...] = RETRY_DELAYS_S,
        drain_timeout: float = DRAIN_TIMEOUT_S,
        drain_retry: float = RETRY_FIRST_S,
    ) -> KubernetesCluster:
        """A bearer token against a base URL: the sandbox, or a plain HTTP proxy."""
        configuration = client.Configuration(host=url.rstrip("/"), api_key={"authorization": f"Bearer {token}"})
        configuration.retries = _retries()
        return cls(client.ApiClient(configuration), request_timeout=request_timeout, retry_delays=retry_delays,
                   drain_timeout=drain_timeout, drain_retry=drain_retry)

    def close(self) -> None:
        self._api_client.close()  # type: ignore[no-untyped-call]

    async def warm_up(self) -> None:
        """Build the Apps and Core API clients in a worker thread, so that no caller on the event loop does."""
        if self._apis is None:
            await asyncio.to_thread(self._load_apis)

    def _load_apis(self) -> tuple[client.AppsV1Api, client.CoreV1Api]:
        with self._apis_lock:
            if self._apis is None:
                self._apis = (client.AppsV1Api(self._api_client), client.CoreV1Api(self._api_client))
            return self._apis

    @property
    def _apps(self) -> client.AppsV1Api:
        return (self._apis or self._load_apis())[0]

    @property
    def _core(self) -> client.CoreV1Api:
        return (self._apis or self._load_apis())[1]

    # ---- the port

    async def check(self) -> str:
        attempt = Attempt(op=None)
        try:
            info = await self._call(self._version.get_code)
        except Exception as error:
            mapped = self._translate(error, attempt)
            if mapped is None:
                raise
            # Whatever went wrong, for a reachability check the cluster is not usable.
            raise ClusterUnavailable(mapped.message, reason=mapped.reason, status=mapped.status) from error
        return str(info.git_version)

    async def inspect(self, op: Operation, *, fresh: bool = False) -> TargetFacts:
        # An alert's decision and the request it proposes read the same target within milliseconds;
        # a short-lived cache halves the API calls. Any write through `apply` empties it.
        key = (op.kind, op.target_ref, op.namespace)
        now = time.monotonic()
        cached = self._facts_cache.get(key)
        if cached is not None and cached[0] > now and not fresh:
            return cached[1]
        await self.warm_up()
        reader = FactReader(self._apps, self._core, self._read)
        try:
            facts = await reader.read(op)
        except Exception as error:
            mapped = self._translate(error, Attempt(op=op, inspecting=True))
            if mapped is None:
                raise
            log.warning("kubernetes.inspect_failed", target=op.target_ref, namespace=op.namespace, error=mapped.code)
            raise mapped from error
        if len(self._facts_cache) > FACTS_CACHE_SIZE:
            self._facts_cache.clear()
        self._facts_cache[key] = (now + FACTS_TTL_S, facts)
        return facts

    async def apply(self, op: Operation, *, dry_run: bool) -> ClusterResult:
        if not dry_run:
            self._facts_cache.clear()
        attempt = Attempt(op=op, dry_run=dry_run)
        await self.warm_up()
        try:
            result = await self._apply(attempt)
        except Exception as error:
            mapped = self._translate(error, attempt)
            if mapped is None:
                raise
            log.warning(
                "kubernetes.apply_failed",
                op=op.kind,
                target=op.target_ref,
                namespace=op.namespace,
                dry_run=dry_run,
                error=mapped.code,
                reason=mapped.reason,
                status=mapped.status,
            )
            if mapped is error:
                raise
            raise mapped from error
        log.info(
            "kubernetes.applied",
            op=op.kind,
            target=op.target_ref,
            namespace=op.namespace,
            dry_run=dry_run,
            resource_version=result.resource_version,
            generation=result.generation,
        )
        return result

    async def observe(self, op: Operation, since: ClusterResult, *, reasons: bool = False) -> Progress:
        try:
            progress = await self._observe(op, since)
            if reasons and not progress.done:
                progress = progress.model_copy(update={"pods": await self._troubles(op, since)})
        except Exception as error:
            mapped = self._translate(error, Attempt(op=op, inspecting=True))
            if mapped is None:
                raise
            log.warning("kubernetes.observe_failed", target=op.target_ref, namespace=op.namespace, error=mapped.code)
            raise mapped from error
        return progress

    async def _observe(self, op: Operation, since: ClusterResult) -> Progress:
        if isinstance(op, CordonOp | UncordonOp):
            node = await self._read_json(self._core.read_node, op.name)
            return verify.node_progress(node, unschedulable=isinstance(op, CordonOp))
        if isinstance(op, DeletePodOp):
            pod = await _absent_ok(self._read_json(self._core.read_namespaced_pod, op.name, op.namespace))
            owner = None
            if since.owner and verify.pod_gone(pod, since):
                owner = await _absent_ok(self._read_owner(since.owner, op.namespace))
            return verify.replacement_progress(pod, owner, since)
        if isinstance(op, DrainOp):
            return verify.drain_progress(op.name, await self.evictable_pods(op.name))
        if not isinstance(op, RestartOp | ScaleOp | RollbackOp):
            # An operation without a check of its own says so instead of claiming its effect was seen.
            return Progress(done=True, achieved="accepted; signoff has no verification for this operation")
        scale_to = op.replicas if isinstance(op, ScaleOp) else None
        target = op.target if isinstance(op, RestartOp | ScaleOp) else "deployment"
        workload = await self._read_workload(target, op.name, op.namespace)
        if target == "deployment":
            return verify.deployment_progress(workload, since, scale_to=scale_to)
        if target == "statefulset":
            return verify.stateful_set_progress(workload, since, scale_to=scale_to)
        return verify.daemon_set_progress(workload, since)

    async def _troubles(self, op: Operation, since: ClusterResult) -> tuple[PodTrouble, ...]:
        """The pods that are not Ready and why: one pod list, only when verification fails."""
        if op.namespace is None:
            return ()
        if isinstance(op, RestartOp | ScaleOp | RollbackOp):
            workload: dict[str, Any] | None = await self._read_workload(op.target, op.name, op.namespace)
        elif isinstance(op, DeletePodOp) and since.owner:
            workload = await _absent_ok(self._read_owner(since.owner, op.namespace))
        else:
            return ()
        if workload is None:
            return ()
        listed = await self._read_json(self._core.list_namespaced_pod, op.namespace,
                                       label_selector=verify.selector_of(workload))
        return verify.pod_troubles(list(listed.get("items") or []))

    async def _read_workload(self, target: str, name: str, namespace: str) -> dict[str, Any]:
        if target == "statefulset":
            return await self._read_json(self._apps.read_namespaced_stateful_set, name, namespace)
        if target == "daemonset":
            return await self._read_json(self._apps.read_namespaced_daemon_set, name, namespace)
        return await self._read_json(self._apps.read_namespaced_deployment, name, namespace)

    async def _read_owner(self, owner: str, namespace: str) -> dict[str, Any]:
        """A deleted pod's controlling owner, `ReplicaSet/api-7c9` (the kinds whose pods come back)."""
        kind, _, name = owner.partition("/")
        if kind == "ReplicaSet":
            return await self._read_json(self._apps.read_namespaced_replica_set, name, namespace)
        if kind in ("StatefulSet", "DaemonSet"):
            return await self._read_workload(kind.lower(), name, namespace)
        raise ApiException(status=404, reason=f"{kind} pods are not replaced by a controller signoff follows")

    # ---- operations

    async def _apply(self, attempt: Attempt) -> ClusterResult:
        op = attempt.op
        if op is None:
            raise TypeError("an apply attempt needs an operation")
        return await _APPLY[type(op)](self, op, attempt)

    async def _restart(self, op: RestartOp, attempt: Attempt) -> ClusterResult:
        patchers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.patch_namespaced_deployment,
            "statefulset": self._apps.patch_namespaced_stateful_set,
            "daemonset": self._apps.patch_namespaced_daemon_set,
        }
        # kubectl writes whole seconds; two restarts within one second would then patch nothing and
        # restart nothing. RFC 3339 allows fractions, so every approved restart really rolls the pods.
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        # Re-sent after a transient failure, the same body carries the same restartedAt: still one rollout.
        obj = await self._write(attempt, patchers[op.target], op.name, op.namespace, body, retry_safe=True)
        generation = obj.metadata.generation if obj.metadata else None
        if attempt.dry_run:
            summary = f"dry run: {op.target_ref} would restart (generation {generation})"
        else:
            summary = f"{op.target_ref} restarted (generation {generation})"
        return _result(summary, obj, generation, revision=_revision(obj))

    async def _scale(self, op: ScaleOp, attempt: Attempt) -> ClusterResult:
        patchers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.patch_namespaced_deployment_scale,
            "statefulset": self._apps.patch_namespaced_stateful_set_scale,
        }
        body = {"spec": {"replicas": op.replicas}}
        scale = await self._write(attempt, patchers[op.target], op.name, op.namespace, body, retry_safe=True)
        running = scale.status.replicas if scale.status else None
        if attempt.dry_run:
            summary = f"dry run: {op.target_ref} would scale to {op.replicas} replicas ({running} running now)"
        else:
            summary = f"{op.target_ref} scaled to {op.replicas} replicas ({running} running before)"
        return _result(summary, scale, None)

    async def _rollback(self, op: RollbackOp, attempt: Attempt) -> ClusterResult:
        """`kubectl rollout undo`, guarded by the resourceVersion it read: a concurrent change
        answers 409, and the whole decision (which revision is previous) is taken again."""
        for try_number in range(1, self._conflict_retries + 2):
            deployment = await self._read_json(self._apps.read_namespaced_deployment, op.name, op.namespace)
            plan = await self._rollback_plan(op, deployment)
            if isinstance(plan, ClusterResult):
                return plan
            patch, revision, images = plan.patch, plan.revision, plan.images
            try:
                obj = await self._write(
                    attempt,
                    self._apps.patch_namespaced_deployment,
                    op.name,
                    op.namespace,
                    patch,
                    content_type=MERGE_PATCH,
                )
            except ApiException as error:
                if error.status != 409:
                    raise
                log.warning(
                    "kubernetes.rollback_conflict",
                    target=op.target_ref,
                    namespace=op.namespace,
                    attempt=try_number,
                    retries=self._conflict_retries,
                )
                attempt.sent_write = False  # a 409 is a definite "not applied"
                continue
            generation = obj.metadata.generation if obj.metadata else None
            verb = "would roll back" if attempt.dry_run else "rolled back"
            prefix = "dry run: " if attempt.dry_run else ""
            summary = f"{prefix}{op.target_ref} {verb} to revision {revision} ({images}; generation {generation})"
            return _result(summary, obj, generation, revision=revision_of(deployment) or None)
        raise ClusterRejected(
            f"{op.target_ref} in {op.namespace} kept changing while it was being rolled back "
            f"(409 Conflict on {self._conflict_retries + 1} attempts); nothing was changed. "
            "Look at what else is deploying it, then try again.",
            reason="Conflict",
            status=409,
        )

    async def _rollback_plan(self, op: RollbackOp, deployment: dict[str, Any]) -> ClusterResult | RollbackPlan:
        """The deployment's ReplicaSets read, then the pure plan (see rollback.py)."""
        refuse_if_paused(op, deployment)
        spec = deployment.get("spec") or {}
        selector = client.V1LabelSelector.from_dict(spec.get("selector") or {})
        listed = await self._read_json(
            self._apps.list_namespaced_replica_set, op.namespace, label_selector=selector_string(selector)
        )
        return plan_rollback(op, deployment, listed.get("items") or [])

    async def _delete(self, op: DeletePodOp, attempt: Attempt) -> ClusterResult:
        try:
            pod = await self._write(attempt, self._core.delete_namespaced_pod, op.name, op.namespace, retry_safe=True)
        except ApiException as error:
            if error.status != 404 or not attempt.retried:
                raise
            # The earlier attempt's answer was lost, but it deleted the pod.
            return ClusterResult(summary=f"{op.target_ref} deleted (confirmed gone after a retry)")
        meta = pod.metadata
        grace = meta.deletion_grace_period_seconds if meta else None
        when = f"{grace}s grace period" if grace is not None else "terminating"
        if attempt.dry_run:
            summary = f"dry run: {op.target_ref} would be deleted ({when})"
        else:
            summary = f"{op.target_ref} deleted ({when})"
        owner = next((ref for ref in (meta.owner_references or []) if ref.controller), None) if meta else None
        return _result(summary, pod, None, uid=meta.uid if meta else None,
                       owner=f"{owner.kind}/{owner.name}" if owner is not None else None)

    async def _cordon(self, op: CordonOp, attempt: Attempt) -> ClusterResult:
        return await self._schedulable(op, attempt, unschedulable=True)

    async def _uncordon(self, op: UncordonOp, attempt: Attempt) -> ClusterResult:
        return await self._schedulable(op, attempt, unschedulable=False)

    async def _schedulable(self, op: CordonOp | UncordonOp, attempt: Attempt, *, unschedulable: bool) -> ClusterResult:
        word = "cordoned" if unschedulable else "uncordoned"
        node = await self._read(self._core.read_node, op.name)
        if bool(node.spec.unschedulable if node.spec else False) == unschedulable:
            # As kubectl does: nothing to write, and saying so is more useful than a no-op patch.
            state = "cordoned" if unschedulable else "schedulable"
            return _result(f"{op.target_ref} is already {state}; nothing changed", node, None)
        patched = await self._write(attempt, self._core.patch_node, op.name, {"spec": {"unschedulable": unschedulable}},
                                    retry_safe=True)
        summary = f"dry run: {op.target_ref} would be {word}" if attempt.dry_run else f"{op.target_ref} {word}"
        return _result(summary, patched, None)

    async def _drain(self, op: DrainOp, attempt: Attempt) -> ClusterResult:
        """`kubectl drain --ignore-daemonsets`: cordon, then evict every other pod of the node.

        A 429 is a PodDisruptionBudget that allows no disruption right now: asked again, with
        backoff, until the drain's deadline. Then it waits until the evicted pods are gone."""
        prefix = "dry run: " if attempt.dry_run else ""
        node = await self._read(self._core.read_node, op.name)
        if not (node.spec.unschedulable if node.spec else False):
            await self._write(attempt, self._core.patch_node, op.name, {"spec": {"unschedulable": True}})
        listed = await self._read(self._core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={op.name}")
        pods = evictable(listed.items)
        skipped = len(listed.items) - len(pods)
        left_alone = f"; {skipped} DaemonSet or mirror pod(s) stay" if skipped else ""
        if attempt.dry_run:
            blocked = [pod_key(p) for p in pods if not await self._evict(attempt, p)]
            waits = f"; a PodDisruptionBudget holds back {listing(blocked)} for now" if blocked else ""
            summary = (f"{prefix}{op.target_ref} would be cordoned and {len(pods)} pod(s) evicted"
                       f"{': ' + listing(pod_key(p) for p in pods) if pods else ''}{waits}{left_alone}")
            return _result(summary, node, None)
        deadline = time.monotonic() + self._drain_timeout
        remaining = {pod_key(p): p for p in pods}
        evicted: dict[str, str | None] = {}  # key → uid, to tell a pod from its namesake replacement
        delay = self._drain_retry
        while True:
            for key, pod in list(remaining.items()):
                if await self._evict(attempt, pod):
                    evicted[key] = pod.metadata.uid if pod.metadata else None
                    del remaining[key]
            if not remaining:
                break
            if time.monotonic() >= deadline:
                raise ClusterRejected(
                    f"{op.target_ref} is cordoned and {len(evicted)} pod(s) were evicted, but after "
                    f"{self._drain_timeout:g} s a PodDisruptionBudget still refuses to evict "
                    f"{listing(remaining)} (429 TooManyRequests). Those pods still run on the node.",
                    reason="TooManyRequests",
                    status=429,
                )
            log.info("kubernetes.drain_waiting", node=op.name, blocked=len(remaining), retry_in=delay)
            await asyncio.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, RETRY_CAP_S)
        await self._wait_gone(op, evicted, deadline)
        summary = f"{op.target_ref} drained: {len(evicted)} pod(s) evicted{left_alone}"
        return _result(summary, node, None)

    async def _evict(self, attempt: Attempt, pod: Any) -> bool:
        """POST the pod's eviction: True when accepted (or already gone), False on 429."""
        meta = pod.metadata
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": meta.name, "namespace": meta.namespace}}
        try:
            # A 429 here is a PodDisruptionBudget's "not yet", which the drain loop waits out itself.
            await self._write(attempt, self._core.create_namespaced_pod_eviction, meta.name, meta.namespace, body,
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
        delay = self._drain_retry
        while True:
            left = [key for key, uid in (await self._evictable_on(op.name)).items() if evicted.get(key, "") == uid]
            if not left:
                return
            if time.monotonic() >= deadline:
                raise ClusterRejected(
                    f"{op.target_ref}: {len(left)} evicted pod(s) were still terminating after "
                    f"{self._drain_timeout:g} s: {listing(left)}.",
                    reason="Timeout",
                )
            await asyncio.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, RETRY_CAP_S)

    async def _evictable_on(self, node: str) -> dict[str, str | None]:
        listed = await self._read(self._core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}")
        return {pod_key(p): (p.metadata.uid if p.metadata else None) for p in listed.items if skip_reason(p) is None}

    async def evictable_pods(self, node: str) -> tuple[str, ...]:
        """`namespace/name` of the pods a drain of this node would still have to evict: empty
        once the node is drained (the verification of a drain asks exactly this)."""
        try:
            return tuple(sorted(await self._evictable_on(node)))
        except Exception as error:
            mapped = self._translate(error, Attempt(op=DrainOp(name=node), inspecting=True))
            if mapped is None:
                raise
            raise mapped from error

    # ---- calls

    async def _call(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """One client call in a worker thread, always with the request timeout."""
        return await asyncio.to_thread(functools.partial(fn, *args, _request_timeout=self._timeout, **kwargs))

    async def _read(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """A read, retried with backoff when it fails transiently: reading twice changes nothing."""
        return await self._retrying(lambda: self._call(fn, *args, **kwargs), None, "read")

    async def _write(
        self,
        attempt: Attempt,
        fn: Callable[..., _T],
        /,
        *args: Any,
        content_type: str | None = None,
        retry_safe: bool = False,
        retry_429: bool = True,
    ) -> _T:
        """A write. Dry runs persist nothing, so they are always retried; a real call only when sending it
        twice has the effect of sending it once (`retry_safe`)."""
        kwargs: dict[str, Any] = {"dry_run": "All"} if attempt.dry_run else {}
        if content_type is not None:
            kwargs["_content_type"] = content_type

        def send() -> Awaitable[_T]:
            attempt.sent_write = True
            return self._call(fn, *args, **kwargs)

        if not (attempt.dry_run or retry_safe):
            return await send()
        return await self._retrying(send, attempt, "dry_run" if attempt.dry_run else "write", retry_429=retry_429)

    async def _retrying(self, call: Callable[[], Awaitable[_T]], attempt: Attempt | None, what: str, *,
                        retry_429: bool = True) -> _T:
        for delay in (*self._retry_delays, None):
            try:
                return await call()
            except Exception as error:
                if delay is None or not _transient(error) or (not retry_429 and getattr(error, "status", 0) == 429):
                    raise
                if attempt is not None:
                    attempt.retried += 1
                log.warning("kubernetes.retry", call=what, delay_s=delay, error=type(error).__name__,
                            status=getattr(error, "status", None))
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last try raises or returns")

    async def _read_json(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The raw JSON answer: the rollback copies templates verbatim, including fields this
        client version's models might not know."""

        def run() -> Any:
            response = fn(*args, _request_timeout=self._timeout, _preload_content=False, **kwargs)
            try:
                return json.loads(response.data)
            finally:
                response.release_conn()

        data = await self._retrying(lambda: asyncio.to_thread(run), None, "read")
        if not isinstance(data, dict):
            raise ClusterUnavailable("The Kubernetes API server answered with something other than a JSON object.")
        return data

    # ---- errors

    def _translate(self, error: BaseException, attempt: Attempt) -> ClusterError | None:
        if isinstance(error, ApiException):
            return api_error(int(error.status or 0), error.reason, error.body, attempt)
        return translate(error, attempt, host=self._api_client.configuration.host, timeout=self._timeout)


def _transient(error: BaseException) -> bool:
    """Worth another try: the server was unavailable or overloaded, or the answer never came."""
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        return status in (0, 429) or status >= 500
    return isinstance(error, urllib3.exceptions.HTTPError | OSError)


async def _absent_ok(read: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
    """A read whose 404 means "gone" (a deleted pod), not an error."""
    try:
        return await read
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _result(summary: str, obj: Any, generation: int | None, *, revision: int | None = None,
            uid: str | None = None, owner: str | None = None) -> ClusterResult:
    meta = getattr(obj, "metadata", None)
    return ClusterResult(
        summary=summary,
        resource_version=meta.resource_version if meta is not None else None,
        generation=generation,
        revision=revision,
        uid=uid,
        owner=owner,
    )


def _revision(obj: Any) -> int | None:
    """The Deployment revision an answer shows (a write's answer: the revision before the rollout)."""
    meta = getattr(obj, "metadata", None)
    value = (meta.annotations or {}).get(REVISION) if meta is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# What `apply` does for each kind of operation.
_APPLY: dict[OperationType, Callable[[KubernetesCluster, Any, Attempt], Awaitable[ClusterResult]]] = by_operation({
    RestartOp: KubernetesCluster._restart,
    ScaleOp: KubernetesCluster._scale,
    RollbackOp: KubernetesCluster._rollback,
    DeletePodOp: KubernetesCluster._delete,
    CordonOp: KubernetesCluster._cordon,
    UncordonOp: KubernetesCluster._uncordon,
    DrainOp: KubernetesCluster._drain,
})
