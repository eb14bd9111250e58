"""Reading an operation's target and what depends on it, for the blast radius on the card.

Only reads. The core turns these facts into a judgement (pods affected, downtime); here we
just gather them: the workload's replicas, its pods (through its selector), the services
selecting those pods, persistent volume claims they mount, and who controls a single pod.
For a node the facts span namespaces, so pods, services and claims are named `ns/name`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from adapters.kubernetes.drain import controller_ref, evictable, pod_key
from adapters.kubernetes.objects import selector_query
from core.domain.cluster import TargetFacts
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

_T = TypeVar("_T")


class Caller(Protocol):
    """Runs one synchronous client call off the event loop (with the request timeout)."""

    def __call__(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Awaitable[_T]: ...


def selector_string(selector: client.V1LabelSelector | None) -> str:
    """A LabelSelector as the query form the API takes: `app=api,tier in (a,b),!canary`."""
    if selector is None:
        return ""
    expressions = ((e.key, e.operator, e.values) for e in selector.match_expressions or [])
    return selector_query(selector.match_labels, expressions)

def _claims(pod: client.V1Pod) -> list[str]:
    spec = pod.spec
    if spec is None:
        return []
    return [
        volume.persistent_volume_claim.claim_name
        for volume in spec.volumes or []
        if volume.persistent_volume_claim is not None
    ]


def _labels(pod: client.V1Pod) -> dict[str, str]:
    return dict(pod.metadata.labels or {}) if pod.metadata else {}


def _name(obj: Any) -> str:
    return str(obj.metadata.name) if obj.metadata else ""


def _namespace(obj: Any) -> str:
    return str(obj.metadata.namespace) if obj.metadata else ""


def _selects(service: client.V1Service, labels: dict[str, str]) -> bool:
    # A service without a selector (e.g. `kubernetes`, or one with manual endpoints) selects nothing.
    selector = service.spec.selector if service.spec else None
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


class FactReader:
    def __init__(self, apps: client.AppsV1Api, core: client.CoreV1Api, call: Caller) -> None:
        self._apps = apps
        self._core = core
        self._call = call

    async def read(self, op: Operation) -> TargetFacts:
        return await _READERS[type(op)](self, op)

    async def _workload_of(self, op: RestartOp | ScaleOp | RollbackOp) -> TargetFacts:
        return await self._workload(op.target, op.name, op.namespace)

    async def _pod_of(self, op: DeletePodOp) -> TargetFacts:
        return await self._pod(op.name, op.namespace)

    async def _node_to_cordon(self, op: CordonOp) -> TargetFacts:
        return await self._node(op.name, cordon=True)

    async def _node_to_uncordon(self, op: UncordonOp) -> TargetFacts:
        return await self._node(op.name, cordon=False)

    async def _node_to_drain(self, op: DrainOp) -> TargetFacts:
        facts = await self._node(op.name, cordon=True)
        if not facts.exists:
            return facts
        listed = await self._call(self._core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={op.name}")
        owners: dict[tuple[str, str, str], str] = {}
        evictions = []
        for pod in evictable(listed.items):
            evictions.append(f"{pod_key(pod)} ({await self._owner(pod, owners)})")
        if facts.note and "already cordoned" in facts.note and evictions:
            facts = facts.model_copy(update={"note": None})  # cordoned but not drained: the drain still evicts
        return facts.model_copy(update={"evictions": tuple(evictions)})

    async def _owner(self, pod: client.V1Pod, seen: dict[tuple[str, str, str], str]) -> str:
        """`deployment/web` for a pod of web's ReplicaSet, `statefulset/db`, or `no controller`."""
        ref = controller_ref(pod)
        if ref is None:
            return "no controller: not recreated"
        namespace = _namespace(pod)
        key = (namespace, ref.kind, ref.name)
        if key not in seen:
            owner = f"{ref.kind.lower()}/{ref.name}"
            if ref.kind == "ReplicaSet":
                replica_set = await self._read_or_none(self._apps.read_namespaced_replica_set, ref.name, namespace)
                refs = replica_set.metadata.owner_references if replica_set and replica_set.metadata else None
                top = next((r for r in refs or [] if r.controller), None)
                if top is not None:
                    owner = f"{top.kind.lower()}/{top.name}"
            seen[key] = owner
        return seen[key]

    async def _read_or_none(self, fn: Callable[..., _T], *args: Any) -> _T | None:
        try:
            return await self._call(fn, *args)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _reader(self, kind: str) -> Callable[..., Any]:
        readers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.read_namespaced_deployment,
            "statefulset": self._apps.read_namespaced_stateful_set,
            "daemonset": self._apps.read_namespaced_daemon_set,
        }
        return readers[kind]

    async def _workload(self, kind: str, name: str, namespace: str) -> TargetFacts:
        workload = await self._read_or_none(self._reader(kind), name, namespace)
        if workload is None:
            return TargetFacts(exists=False, note=f"{kind}/{name} not found in namespace {namespace}")
        replicas, ready = _replica_counts(kind, workload)
        selector = selector_string(workload.spec.selector if workload.spec else None)
        pods: list[client.V1Pod] = []
        if selector:  # an empty selector would list every pod in the namespace
            listed = await self._call(self._core.list_namespaced_pod, namespace, label_selector=selector)
            pods = list(listed.items)
        claims = sorted({claim for pod in pods for claim in _claims(pod)})
        if kind == "statefulset" and not claims:
            # No pods running (scaled to zero): the claims still exist and still hold the data.
            templates = workload.spec.volume_claim_templates or []
            claims = [f"{_name(t)}-{name}-{i}" for t in templates for i in range(replicas or 0)]
        # The template's labels too: a service in front of a workload scaled to zero still depends on it.
        template = workload.spec.template if workload.spec else None
        template_labels = dict(template.metadata.labels or {}) if template and template.metadata else {}
        return TargetFacts(
            exists=True,
            replicas=replicas,
            ready_replicas=ready,
            pods=tuple(sorted(_name(p) for p in pods)),
            services=await self._services(namespace, [*(_labels(p) for p in pods), template_labels]),
            stateful=kind == "statefulset" or bool(claims),
            volumes=tuple(claims),
            update_strategy=_update_strategy(kind, workload),
        )

    async def _pod(self, name: str, namespace: str) -> TargetFacts:
        pod = await self._read_or_none(self._core.read_namespaced_pod, name, namespace)
        if pod is None:
            return TargetFacts(exists=False, note=f"pod/{name} not found in namespace {namespace}")
        controller, workload = await self._controller_of(pod, namespace)
        replicas = ready = None
        if workload is not None and controller is not None:
            replicas, ready = _replica_counts(controller.split("/", 1)[0], workload)
        claims = sorted(set(_claims(pod)))
        note = None
        if controller is None:
            note = f"pod/{name} has no controller: once deleted, nothing recreates it"
        return TargetFacts(
            exists=True,
            replicas=replicas,
            ready_replicas=ready,
            pods=(name,),
            services=await self._services(namespace, [_labels(pod)]),
            stateful=bool(claims) or (controller or "").startswith("statefulset/"),
            volumes=tuple(claims),
            controller=controller,
            note=note,
        )

    async def _controller_of(self, pod: client.V1Pod, namespace: str) -> tuple[str | None, Any]:
        """`deployment/web` for a pod of web's ReplicaSet; the controlling workload too, if read."""
        refs = pod.metadata.owner_references if pod.metadata else None
        ref = next((r for r in refs or [] if r.controller), None)
        if ref is None:
            return None, None
        if ref.kind == "ReplicaSet":
            replica_set = await self._read_or_none(self._apps.read_namespaced_replica_set, ref.name, namespace)
            owners = replica_set.metadata.owner_references if replica_set and replica_set.metadata else None
            owner = next((r for r in owners or [] if r.controller), None)
            if owner is None or owner.kind != "Deployment":
                return f"replicaset/{ref.name}", replica_set
            deployment = await self._read_or_none(self._apps.read_namespaced_deployment, owner.name, namespace)
            return f"deployment/{owner.name}", deployment
        kind = ref.kind.lower()
        readers: dict[str, Callable[..., Any]] = {
            "statefulset": self._apps.read_namespaced_stateful_set,
            "daemonset": self._apps.read_namespaced_daemon_set,
        }
        workload = await self._read_or_none(readers[kind], ref.name, namespace) if kind in readers else None
        return f"{kind}/{ref.name}", workload

    async def _node(self, name: str, *, cordon: bool) -> TargetFacts:
        node = await self._read_or_none(self._core.read_node, name)
        if node is None:
            return TargetFacts(exists=False, note=f"node/{name} not found")
        listed = await self._call(self._core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={name}")
        pods = sorted(listed.items, key=lambda p: (_namespace(p), _name(p)))
        services = await self._call(self._core.list_service_for_all_namespaces)
        selecting = sorted(
            {
                f"{_namespace(s)}/{_name(s)}"
                for s in services.items
                for p in pods
                if _namespace(s) == _namespace(p) and _selects(s, _labels(p))
            }
        )
        claims = sorted({f"{_namespace(p)}/{claim}" for p in pods for claim in _claims(p)})
        notes = []
        unschedulable = bool(node.spec.unschedulable) if node.spec else False
        if cordon and unschedulable:
            notes.append(f"node/{name} is already cordoned")
        if not cordon and not unschedulable:
            notes.append(f"node/{name} is already schedulable")
        ready = next((c for c in (node.status.conditions or []) if c.type == "Ready"), None) if node.status else None
        if ready is not None and ready.status != "True":
            notes.append(f"node/{name} is NotReady")
        return TargetFacts(
            exists=True,
            pods=tuple(f"{_namespace(p)}/{_name(p)}" for p in pods),
            services=tuple(selecting),
            stateful=bool(claims),
            volumes=tuple(claims),
            note="; ".join(notes) or None,
        )

    async def _services(self, namespace: str, label_sets: Sequence[dict[str, str]]) -> tuple[str, ...]:
        """Services in the namespace whose selector matches any of these pods' labels."""
        if not any(label_sets):
            return ()
        services = await self._call(self._core.list_namespaced_service, namespace)
        return tuple(sorted(_name(s) for s in services.items if _any_selected(s, label_sets)))


# What is read for each kind of operation: its workload, its pod, or its node.
_READERS: dict[OperationType, Callable[[FactReader, Any], Awaitable[TargetFacts]]] = by_operation({
    RestartOp: FactReader._workload_of,
    ScaleOp: FactReader._workload_of,
    RollbackOp: FactReader._workload_of,
    DeletePodOp: FactReader._pod_of,
    CordonOp: FactReader._node_to_cordon,
    UncordonOp: FactReader._node_to_uncordon,
    DrainOp: FactReader._node_to_drain,
})


def _any_selected(service: client.V1Service, label_sets: Iterable[dict[str, str]]) -> bool:
    return any(_selects(service, labels) for labels in label_sets)


def _replica_counts(kind: str, workload: Any) -> tuple[int | None, int | None]:
    """(desired, ready); a DaemonSet's desired count is the number of nodes it should run on."""
    status = workload.status
    if kind == "daemonset":
        if status is None:
            return 0, 0
        return int(status.desired_number_scheduled), int(status.number_ready)
    spec = workload.spec
    replicas = spec.replicas if spec is not None and spec.replicas is not None else 1
    ready = (status.ready_replicas if status is not None else None) or 0
    return int(replicas), int(ready)


def _update_strategy(kind: str, workload: Any) -> str | None:
    spec = workload.spec
    strategy = (spec.strategy if kind == "deployment" else spec.update_strategy) if spec is not None else None
    return str(strategy.type or "RollingUpdate") if strategy is not None else None
