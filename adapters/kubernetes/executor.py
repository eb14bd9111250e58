"""The core's `Cluster` port on the official Kubernetes client.

The client is synchronous (urllib3), so every call runs in a worker thread with a request
timeout; nothing here blocks the event loop. Each operation is the API call `kubectl`
would make (see docs/design.md §2), and every failure becomes one of the core's typed errors
with a sentence a person can act on:

- 404 → TargetMissing;
- 400/401/403/409/422 and other definite refusals → ClusterRejected with the API's reason;
- 5xx, 429, timeouts and connection failures → ClusterUnavailable, saying whether the
  change may have happened (a write whose answer never came has an unknown outcome).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from adapters.kubernetes.blast import FactReader, selector_string
from core.domain.cluster import (
    ClusterError,
    ClusterRejected,
    ClusterResult,
    ClusterUnavailable,
    TargetFacts,
    TargetMissing,
)
from core.domain.operations import (
    CordonOp,
    DeletePodOp,
    Operation,
    RestartOp,
    RollbackOp,
    ScaleOp,
    UncordonOp,
)

log = structlog.get_logger(__name__)

_T = TypeVar("_T")

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
FACTS_TTL_S = 2.0
FACTS_CACHE_SIZE = 512
REVISION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH = "pod-template-hash"
MERGE_PATCH = "application/merge-patch+json"

# Annotations `kubectl rollout undo` keeps from the deployment instead of taking the old ReplicaSet's.
_ROLLBACK_KEEPS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


def _retries() -> urllib3.Retry:
    # Retry only connection failures (the request never left); a write whose answer timed out
    # must not be sent again behind our back, and a retried GET would multiply the timeout.
    return urllib3.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0, backoff_factor=0.1)


@dataclass
class _Attempt:
    """What is being done, so a failure can say what it means for the cluster."""

    op: Operation | None
    dry_run: bool = False
    sent_write: bool = False
    inspecting: bool = False

    @property
    def action(self) -> str:
        op = self.op
        if op is None:
            return "answer a version request"
        where = f" in {op.namespace}" if op.namespace else ""
        if self.inspecting:
            return f"read {op.target_ref}{where} and what depends on it"
        if isinstance(op, RestartOp):
            text = f"restart {op.target_ref}{where}"
        elif isinstance(op, ScaleOp):
            text = f"scale {op.target_ref}{where} to {op.replicas} replicas"
        elif isinstance(op, RollbackOp):
            text = f"roll back {op.target_ref}{where}"
        elif isinstance(op, DeletePodOp):
            text = f"delete {op.target_ref}{where}"
        else:
            text = f"{op.kind} {op.target_ref}"
        return f"dry-run {text}" if self.dry_run else text

    @property
    def outcome(self) -> str:
        if self.dry_run or not self.sent_write:
            return "Nothing was changed."
        return "Whether the change took effect is unknown: check the cluster before trying again."


class KubernetesCluster:
    """Implements `core.domain.cluster.Cluster` against a real API server (or the sandbox)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        request_timeout: float = 10.0,
        conflict_retries: int = 3,
    ) -> None:
        self._api_client = api_client
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
    def for_url(cls, url: str, token: str, *, request_timeout: float = 10.0) -> KubernetesCluster:
        """A bearer token against a base URL: the sandbox, or a plain HTTP proxy."""
        configuration = client.Configuration(host=url.rstrip("/"), api_key={"authorization": f"Bearer {token}"})
        configuration.retries = _retries()
        return cls(client.ApiClient(configuration), request_timeout=request_timeout)

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
        attempt = _Attempt(op=None)
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
        reader = FactReader(self._apps, self._core, self._call)
        try:
            facts = await reader.read(op)
        except Exception as error:
            mapped = self._translate(error, _Attempt(op=op, inspecting=True))
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
        attempt = _Attempt(op=op, dry_run=dry_run)
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

    # ---- operations

    async def _apply(self, attempt: _Attempt) -> ClusterResult:
        op = attempt.op
        if isinstance(op, RestartOp):
            return await self._restart(op, attempt)
        if isinstance(op, ScaleOp):
            return await self._scale(op, attempt)
        if isinstance(op, RollbackOp):
            return await self._rollback(op, attempt)
        if isinstance(op, DeletePodOp):
            return await self._delete(op, attempt)
        if isinstance(op, CordonOp | UncordonOp):
            return await self._cordon(op, attempt, unschedulable=isinstance(op, CordonOp))
        raise TypeError(f"not an operation: {op!r}")

    async def _restart(self, op: RestartOp, attempt: _Attempt) -> ClusterResult:
        patchers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.patch_namespaced_deployment,
            "statefulset": self._apps.patch_namespaced_stateful_set,
            "daemonset": self._apps.patch_namespaced_daemon_set,
        }
        # kubectl writes whole seconds; two restarts within one second would then patch nothing and
        # restart nothing. RFC 3339 allows fractions, so every approved restart really rolls the pods.
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        obj = await self._write(attempt, patchers[op.target], op.name, op.namespace, body)
        generation = obj.metadata.generation if obj.metadata else None
        if attempt.dry_run:
            summary = f"dry run: {op.target_ref} would restart (generation {generation})"
        else:
            summary = f"{op.target_ref} restarted (generation {generation})"
        return _result(summary, obj, generation)

    async def _scale(self, op: ScaleOp, attempt: _Attempt) -> ClusterResult:
        patchers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.patch_namespaced_deployment_scale,
            "statefulset": self._apps.patch_namespaced_stateful_set_scale,
        }
        body = {"spec": {"replicas": op.replicas}}
        scale = await self._write(attempt, patchers[op.target], op.name, op.namespace, body)
        running = scale.status.replicas if scale.status else None
        if attempt.dry_run:
            summary = f"dry run: {op.target_ref} would scale to {op.replicas} replicas ({running} running now)"
        else:
            summary = f"{op.target_ref} scaled to {op.replicas} replicas ({running} running before)"
        return _result(summary, scale, None)

    async def _rollback(self, op: RollbackOp, attempt: _Attempt) -> ClusterResult:
        """`kubectl rollout undo`, guarded by the resourceVersion it read: a concurrent change
        answers 409, and the whole decision (which revision is previous) is taken again."""
        for try_number in range(1, self._conflict_retries + 2):
            deployment = await self._read_json(self._apps.read_namespaced_deployment, op.name, op.namespace)
            plan = await self._rollback_plan(op, deployment)
            if isinstance(plan, ClusterResult):
                return plan
            patch, revision, images = plan
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
            return _result(summary, obj, generation)
        raise ClusterRejected(
            f"{op.target_ref} in {op.namespace} kept changing while it was being rolled back "
            f"(409 Conflict on {self._conflict_retries + 1} attempts); nothing was changed. "
            "Look at what else is deploying it, then try again.",
            reason="Conflict",
            status=409,
        )

    async def _rollback_plan(
        self, op: RollbackOp, deployment: dict[str, Any]
    ) -> ClusterResult | tuple[dict[str, Any], int, str]:
        """The merge patch restoring the previous revision, or a result when there is nothing to do."""
        meta = deployment.get("metadata") or {}
        spec = deployment.get("spec") or {}
        if spec.get("paused"):
            # kubectl refuses too: a paused deployment would not roll the restored template out.
            raise ClusterRejected(
                f"{op.target_ref} in {op.namespace} is paused; resume it (kubectl rollout resume) before rolling back.",
                reason="DeploymentPaused",
            )
        selector = client.V1LabelSelector.from_dict(spec.get("selector") or {})
        listed = await self._read_json(
            self._apps.list_namespaced_replica_set, op.namespace, label_selector=selector_string(selector)
        )
        owned = [
            rs
            for rs in listed.get("items") or []
            if any(
                ref.get("controller") and ref.get("uid") == meta.get("uid")
                for ref in (rs.get("metadata") or {}).get("ownerReferences") or []
            )
        ]
        revisions = {_revision(rs): rs for rs in owned if _revision(rs) > 0}
        current = _revision(deployment) or max(revisions, default=0)
        previous = max((r for r in revisions if r < current), default=None)
        if previous is None:
            raise ClusterRejected(
                f"{op.target_ref} in {op.namespace} has no previous revision to roll back to "
                f"(revision {current} is the only one its ReplicaSets record).",
                reason="NoPreviousRevision",
            )
        old = revisions[previous]
        template = json.loads(json.dumps((old.get("spec") or {}).get("template") or {}))
        labels = (template.get("metadata") or {}).get("labels")
        if isinstance(labels, dict):
            labels.pop(POD_TEMPLATE_HASH, None)
        images = (
            ", ".join(str(c.get("image")) for c in (template.get("spec") or {}).get("containers") or [])
            or "no containers"
        )
        current_template = spec.get("template") or {}
        if _pruned(current_template) == _pruned(template):
            return ClusterResult(
                summary=f"{op.target_ref} already runs the template of revision {previous}; nothing changed",
                resource_version=meta.get("resourceVersion"),
                generation=meta.get("generation"),
            )
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in _ROLLBACK_KEEPS}
        annotations.update(
            {
                k: v
                for k, v in ((old.get("metadata") or {}).get("annotations") or {}).items()
                if k not in _ROLLBACK_KEEPS
            }
        )
        patch: dict[str, Any] = {
            # The precondition: the API server answers 409 if the deployment changed since we read it.
            "metadata": {"resourceVersion": meta.get("resourceVersion")},
            "spec": {"template": _merge_diff(current_template, template)},
        }
        annotation_diff = _merge_diff(meta.get("annotations") or {}, annotations)
        if annotation_diff:
            patch["metadata"]["annotations"] = annotation_diff
        return patch, previous, images

    async def _delete(self, op: DeletePodOp, attempt: _Attempt) -> ClusterResult:
        pod = await self._write(attempt, self._core.delete_namespaced_pod, op.name, op.namespace)
        meta = pod.metadata
        grace = meta.deletion_grace_period_seconds if meta else None
        when = f"{grace}s grace period" if grace is not None else "terminating"
        if attempt.dry_run:
            summary = f"dry run: {op.target_ref} would be deleted ({when})"
        else:
            summary = f"{op.target_ref} deleted ({when})"
        return _result(summary, pod, None)

    async def _cordon(self, op: CordonOp | UncordonOp, attempt: _Attempt, *, unschedulable: bool) -> ClusterResult:
        word = "cordoned" if unschedulable else "uncordoned"
        node = await self._call(self._core.read_node, op.name)
        if bool(node.spec.unschedulable if node.spec else False) == unschedulable:
            # As kubectl does: nothing to write, and saying so is more useful than a no-op patch.
            state = "cordoned" if unschedulable else "schedulable"
            return _result(f"{op.target_ref} is already {state}; nothing changed", node, None)
        patched = await self._write(attempt, self._core.patch_node, op.name, {"spec": {"unschedulable": unschedulable}})
        summary = f"dry run: {op.target_ref} would be {word}" if attempt.dry_run else f"{op.target_ref} {word}"
        return _result(summary, patched, None)

    # ---- calls

    async def _call(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """One client call in a worker thread, always with the request timeout."""
        return await asyncio.to_thread(functools.partial(fn, *args, _request_timeout=self._timeout, **kwargs))

    async def _write(
        self,
        attempt: _Attempt,
        fn: Callable[..., _T],
        /,
        *args: Any,
        content_type: str | None = None,
    ) -> _T:
        kwargs: dict[str, Any] = {"dry_run": "All"} if attempt.dry_run else {}
        if content_type is not None:
            kwargs["_content_type"] = content_type
        attempt.sent_write = True
        return await self._call(fn, *args, **kwargs)

    async def _read_json(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The raw JSON answer: the rollback copies templates verbatim, including fields this
        client version's models might not know."""

        def run() -> Any:
            response = fn(*args, _request_timeout=self._timeout, _preload_content=False, **kwargs)
            try:
                return json.loads(response.data)
            finally:
                response.release_conn()

        data = await asyncio.to_thread(run)
        if not isinstance(data, dict):
            raise ClusterUnavailable("The Kubernetes API server answered with something other than a JSON object.")
        return data

    # ---- errors

    def _translate(self, error: BaseException, attempt: _Attempt) -> ClusterError | None:
        """The core's error for a client failure, or None for an exception that is our own bug."""
        if isinstance(error, ClusterError):
            return error
        if isinstance(error, ApiException):
            return self._api_error(error, attempt)
        if isinstance(error, ValidationError):
            return ClusterUnavailable(
                f"Could not {attempt.action}: the API server's answer did not parse ({error.error_count()} "
                f"invalid fields). {attempt.outcome}",
                reason="InvalidResponse",
            )
        if isinstance(error, urllib3.exceptions.HTTPError | OSError):
            return self._transport_error(error, attempt)
        return None

    def _api_error(self, error: ApiException, attempt: _Attempt) -> ClusterError:
        status = int(error.status or 0)
        body = _status_body(error)
        reason = str(body.get("reason") or error.reason or "Unknown")
        message = str(body.get("message") or error.reason or "no message")
        op = attempt.op
        if status == 404 and op is not None:
            where = f" in namespace {op.namespace}" if op.namespace else ""
            return TargetMissing(f"{op.target_ref} not found{where}", reason="NotFound", status=404)
        if status in (0, 429) or status >= 500:
            return ClusterUnavailable(
                f"The Kubernetes API server failed to {attempt.action} ({status} {reason}): {message}. "
                f"{attempt.outcome}",
                reason=reason,
                status=status or None,
            )
        if status == 422:
            causes = [c for c in (body.get("details") or {}).get("causes") or [] if isinstance(c, dict)]
            extra = [
                f"{c.get('field')}: {c.get('message')}" for c in causes if str(c.get("message") or "") not in message
            ]
            if extra:
                message = f"{message} ({'; '.join(extra)})"
        return ClusterRejected(
            f"The Kubernetes API server refused to {attempt.action} ({status} {reason}): {message}",
            reason=reason,
            status=status,
        )

    def _transport_error(self, error: BaseException, attempt: _Attempt) -> ClusterUnavailable:
        cause: BaseException = error
        if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
            cause = error.reason
        host = self._api_client.configuration.host
        if isinstance(cause, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
            return ClusterUnavailable(
                f"Could not connect to the Kubernetes API server at {host} to {attempt.action}. Nothing was changed.",
                reason="ConnectionFailed",
            )
        if isinstance(cause, urllib3.exceptions.ConnectTimeoutError):
            return ClusterUnavailable(
                f"Connecting to the Kubernetes API server at {host} timed out after {self._timeout:g} s "
                f"while trying to {attempt.action}. Nothing was changed.",
                reason="Timeout",
            )
        if isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
            return ClusterUnavailable(
                f"The Kubernetes API server at {host} did not answer within {self._timeout:g} s "
                f"while trying to {attempt.action}. {attempt.outcome}",
                reason="Timeout",
            )
        return ClusterUnavailable(
            f"The connection to the Kubernetes API server at {host} failed while trying to "
            f"{attempt.action} ({type(cause).__name__}: {cause}). {attempt.outcome}",
            reason="ConnectionFailed",
        )


def _status_body(error: ApiException) -> dict[str, Any]:
    """The `Status` object an API server sends with an error, or {}."""
    try:
        body = json.loads(error.body) if error.body else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _result(summary: str, obj: Any, generation: int | None) -> ClusterResult:
    meta = getattr(obj, "metadata", None)
    return ClusterResult(
        summary=summary,
        resource_version=meta.resource_version if meta is not None else None,
        generation=generation,
    )


def _revision(obj: dict[str, Any]) -> int:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _pruned(value: Any) -> Any:
    """Nulls and empty maps/lists removed: the API server treats them as absent."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _merge_diff(current: Any, target: Any) -> Any:
    """The RFC 7386 merge patch that turns `current` into `target` (lists are replaced whole)."""
    if not isinstance(current, dict) or not isinstance(target, dict):
        return target
    patch: dict[str, Any] = {}
    for key in current.keys() - target.keys():
        patch[key] = None
    for key, value in target.items():
        if key not in current:
            patch[key] = value
        elif current[key] != value:
            if isinstance(current[key], dict) and isinstance(value, dict):
                patch[key] = _merge_diff(current[key], value)
            else:
                patch[key] = value
    return patch
