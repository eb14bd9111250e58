"""Reading an operation's target and what depends on it, for the blast radius on the card.

Only reads, each object once and as raw JSON (see calls.py). The core turns these facts into a
judgement (pods affected, downtime); here we just gather them: the workload's replicas, its pods
(through its selector), the services selecting those pods, persistent volume claims they mount,
and who controls a single pod. For a node the facts span namespaces, so pods, services and claims
are named `ns/name`. The target object itself goes along (`Read.target`): the request's preview starts
from it. Before a request runs, `target` reads the target alone: its pin and the risk floor need no more.
A namespace's services are listed once for the requests made there within a couple of seconds.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

from kubernetes import client

from adapters.kubernetes.calls import JSON, Calls, meta, spec
from adapters.kubernetes.drain import controller_ref, evictable, pod_key
from adapters.kubernetes.objects import selector_string
from adapters.kubernetes.pin import observed_pod, observed_workload, with_rollback_target
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


def _claims(pod: JSON) -> list[str]:
    return [str(claim["claimName"]) for volume in spec(pod).get("volumes") or []
            if (claim := volume.get("persistentVolumeClaim")) is not None]


def _labels(obj: JSON) -> dict[str, str]:
    return dict(meta(obj).get("labels") or {})


def _name(obj: JSON) -> str:
    return str(meta(obj).get("name") or "")


def _namespace(obj: JSON) -> str:
    return str(meta(obj).get("namespace") or "")


def _items(listed: JSON) -> list[JSON]:
    return list(listed.get("items") or [])


def _selects(service: JSON, labels: dict[str, str]) -> bool:
    # A service without a selector (e.g. `kubernetes`, or one with manual endpoints) selects nothing.
    selector = spec(service).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


SERVICES_LISTED = 256  # namespaces whose services are kept at most


class Read(NamedTuple):
    """The facts, and the target object as they were read from it (None: not found), which the preview of the
    same request starts from instead of reading it again."""

    facts: TargetFacts
    target: JSON | None = None


class FactReader:
    def __init__(self, calls: Calls, *, services_ttl: float = 0.0) -> None:
        self._calls = calls
        # A namespace's services, listed for one request's blast radius, serve the next ones for `services_ttl`
        # seconds (as long as the executor keeps facts): signoff never writes a service, and under load every
        # request in a namespace listed them again.
        self._services_ttl = services_ttl
        self._services_listed: dict[str, tuple[float, list[JSON]]] = {}

    @property
    def _apps(self) -> client.AppsV1Api:
        return self._calls.apps

    @property
    def _core(self) -> client.CoreV1Api:
        return self._calls.core

    async def read(self, op: Operation, *, fresh: bool = False) -> Read:
        """The target and what depends on it (the blast radius on the card). `fresh`: nothing listed earlier."""
        if fresh and op.namespace is not None:
            self._services_listed.pop(op.namespace, None)
        return await _READERS[type(op)](self, op)

    async def target(self, op: Operation) -> TargetFacts:
        """The target alone, before a request runs: whether it exists, its replicas, its note and what is pinned
        (all the pin and the risk floor read); what depends on it (pods, services, volumes) is not read."""
        return await _TARGETS[type(op)](self, op)

    async def _workload_alone_of(self, op: RestartOp | ScaleOp | RollbackOp) -> TargetFacts:
        return (await self._workload_alone(op.target, op.name, op.namespace,
                                           rollback=isinstance(op, RollbackOp))).facts

    async def _pod_alone(self, op: DeletePodOp) -> TargetFacts:
        pod = await self._calls.read_or_none(self._core.read_namespaced_pod, op.name, op.namespace)
        if pod is None:
            return _missing(f"pod/{op.name} not found in namespace {op.namespace}")
        return TargetFacts(exists=True, pods=(op.name,), observed=observed_pod(pod))

    async def _node_alone(self, op: CordonOp | UncordonOp | DrainOp) -> TargetFacts:
        node = await self._calls.read_or_none(self._core.read_node, op.name)
        if node is None:
            return _missing(f"node/{op.name} not found")
        return TargetFacts(exists=True, note=_node_note(op.name, node, cordon=not isinstance(op, UncordonOp)))

    async def _workload_of(self, op: RestartOp | ScaleOp | RollbackOp) -> Read:
        return await self._workload(op.target, op.name, op.namespace, rollback=isinstance(op, RollbackOp))

    async def _pod_of(self, op: DeletePodOp) -> Read:
        return await self._pod(op.name, op.namespace)

    async def _node_to_cordon(self, op: CordonOp) -> Read:
        return await self._node(op.name, cordon=True)

    async def _node_to_uncordon(self, op: UncordonOp) -> Read:
        return await self._node(op.name, cordon=False)

    async def _node_to_drain(self, op: DrainOp) -> Read:
        (facts, node), pods = await self._node_and_pods(op.name, cordon=True)
        if not facts.exists:
            return Read(facts)
        owners: dict[tuple[str, str, str], str] = {}
        evictions = [f"{pod_key(pod)} ({await self._owner(pod, owners)})" for pod in evictable(pods)]
        if facts.note and "already cordoned" in facts.note and evictions:
            facts = facts.model_copy(update={"note": None})  # cordoned but not drained: the drain still evicts
        return Read(facts.model_copy(update={"evictions": tuple(evictions)}), node)

    async def owner_of(self, pod: JSON) -> str:
        """`deployment/web` for a pod of web's ReplicaSet (the preview of a delete or a drain names it)."""
        return await self._owner(pod, {})

    async def _owner(self, pod: JSON, seen: dict[tuple[str, str, str], str]) -> str:
        """`deployment/web` for a pod of web's ReplicaSet, `statefulset/db`, or `no controller`."""
        ref = controller_ref(pod)
        if ref is None:
            return "no controller: not recreated"
        namespace, kind, name = _namespace(pod), str(ref.get("kind")), str(ref.get("name"))
        key = (namespace, kind, name)
        if key not in seen:
            owner = f"{kind.lower()}/{name}"
            if kind == "ReplicaSet":
                replica_set = await self._calls.read_or_none(self._apps.read_namespaced_replica_set, name, namespace)
                top = controller_ref(replica_set) if replica_set is not None else None
                if top is not None:
                    owner = f"{str(top.get('kind')).lower()}/{top.get('name')}"
            seen[key] = owner
        return seen[key]

    def _reader(self, kind: str) -> Callable[..., Any]:
        readers: dict[str, Callable[..., Any]] = {
            "deployment": self._apps.read_namespaced_deployment,
            "statefulset": self._apps.read_namespaced_stateful_set,
            "daemonset": self._apps.read_namespaced_daemon_set,
        }
        return readers[kind]

    async def _workload_alone(self, kind: str, name: str, namespace: str, *, rollback: bool) -> Read:
        workload = await self._calls.read_or_none(self._reader(kind), name, namespace)
        if workload is None:
            return Read(_missing(f"{kind}/{name} not found in namespace {namespace}"))
        observed = observed_workload(workload)
        if rollback:
            observed = await with_rollback_target(self._calls, workload, observed)
        replicas, ready = _replica_counts(kind, workload)
        facts = TargetFacts(exists=True, replicas=replicas, ready_replicas=ready, stateful=kind == "statefulset",
                            update_strategy=_update_strategy(kind, workload), observed=observed)
        return Read(facts, workload)

    async def _workload(self, kind: str, name: str, namespace: str, *, rollback: bool = False) -> Read:
        alone = await self._workload_alone(kind, name, namespace, rollback=rollback)
        workload, replicas = alone.target, alone.facts.replicas
        if workload is None:
            return alone
        selector = selector_string(spec(workload).get("selector"))
        pods: list[JSON] = []
        if selector:  # an empty selector would list every pod in the namespace
            pods = _items(await self._calls.read(self._core.list_namespaced_pod, namespace, label_selector=selector))
        claims = sorted({claim for pod in pods for claim in _claims(pod)})
        if kind == "statefulset" and not claims:
            # No pods running (scaled to zero): the claims still exist and still hold the data.
            templates = spec(workload).get("volumeClaimTemplates") or []
            claims = [f"{_name(t)}-{name}-{i}" for t in templates for i in range(replicas or 0)]
        # The template's labels too: a service in front of a workload scaled to zero still depends on it.
        template_labels = _labels(spec(workload).get("template") or {})
        return Read(alone.facts.model_copy(update={
            "pods": tuple(sorted(_name(p) for p in pods)),
            "services": await self._services(namespace, [*(_labels(p) for p in pods), template_labels]),
            "stateful": kind == "statefulset" or bool(claims),
            "volumes": tuple(claims),
        }), workload)

    async def _pod(self, name: str, namespace: str) -> Read:
        pod = await self._calls.read_or_none(self._core.read_namespaced_pod, name, namespace)
        if pod is None:
            return Read(_missing(f"pod/{name} not found in namespace {namespace}"))
        controller, workload = await self._controller_of(pod, namespace)
        replicas = ready = None
        if workload is not None and controller is not None:
            replicas, ready = _replica_counts(controller.split("/", 1)[0], workload)
        claims = sorted(set(_claims(pod)))
        note = None
        if controller is None:
            note = f"pod/{name} has no controller: once deleted, nothing recreates it"
        return Read(TargetFacts(
            exists=True,
            replicas=replicas,
            ready_replicas=ready,
            pods=(name,),
            services=await self._services(namespace, [_labels(pod)]),
            stateful=bool(claims) or (controller or "").startswith("statefulset/"),
            volumes=tuple(claims),
            controller=controller,
            note=note,
            observed=observed_pod(pod),
        ), pod)

    async def _controller_of(self, pod: JSON, namespace: str) -> tuple[str | None, JSON | None]:
        """`deployment/web` for a pod of web's ReplicaSet; the controlling workload too, if read."""
        ref = controller_ref(pod)
        if ref is None:
            return None, None
        kind, name = str(ref.get("kind")), str(ref.get("name"))
        if kind == "ReplicaSet":
            replica_set = await self._calls.read_or_none(self._apps.read_namespaced_replica_set, name, namespace)
            owner = controller_ref(replica_set) if replica_set is not None else None
            if owner is None or owner.get("kind") != "Deployment":
                return f"replicaset/{name}", replica_set
            deployment = await self._calls.read_or_none(self._apps.read_namespaced_deployment,
                                                        str(owner.get("name")), namespace)
            return f"deployment/{owner.get('name')}", deployment
        kind = kind.lower()
        readers: dict[str, Callable[..., Any]] = {
            "statefulset": self._apps.read_namespaced_stateful_set,
            "daemonset": self._apps.read_namespaced_daemon_set,
        }
        workload = await self._calls.read_or_none(readers[kind], name, namespace) if kind in readers else None
        return f"{kind}/{name}", workload

    async def _node(self, name: str, *, cordon: bool) -> Read:
        return Read(*(await self._node_and_pods(name, cordon=cordon))[0])

    async def _node_and_pods(self, name: str, *, cordon: bool) -> tuple[Read, list[JSON]]:
        node = await self._calls.read_or_none(self._core.read_node, name)
        if node is None:
            return Read(_missing(f"node/{name} not found")), []
        listed = await self._calls.read(self._core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={name}")
        pods = sorted(_items(listed), key=lambda p: (_namespace(p), _name(p)))
        services = _items(await self._calls.read(self._core.list_service_for_all_namespaces))
        selecting = sorted(
            {
                f"{_namespace(s)}/{_name(s)}"
                for s in services
                for p in pods
                if _namespace(s) == _namespace(p) and _selects(s, _labels(p))
            }
        )
        claims = sorted({f"{_namespace(p)}/{claim}" for p in pods for claim in _claims(p)})
        facts = TargetFacts(
            exists=True,
            pods=tuple(f"{_namespace(p)}/{_name(p)}" for p in pods),
            services=tuple(selecting),
            stateful=bool(claims),
            volumes=tuple(claims),
            note=_node_note(name, node, cordon=cordon),
        )
        return Read(facts, node), pods

    async def _services(self, namespace: str, label_sets: Sequence[dict[str, str]]) -> tuple[str, ...]:
        """Services in the namespace whose selector matches any of these pods' labels."""
        if not any(label_sets):
            return ()
        now = time.monotonic()
        listed = self._services_listed.get(namespace)
        if listed is not None and listed[0] > now:
            services = listed[1]
        else:
            services = _items(await self._calls.read(self._core.list_namespaced_service, namespace))
            if self._services_ttl > 0:
                if len(self._services_listed) > SERVICES_LISTED:
                    self._services_listed.clear()
                self._services_listed[namespace] = (now + self._services_ttl, services)
        return tuple(sorted(_name(s) for s in services if _any_selected(s, label_sets)))


# What is read for each kind of operation: its workload, its pod, or its node.
_READERS: dict[OperationType, Callable[[FactReader, Any], Awaitable[Read]]] = by_operation({
    RestartOp: FactReader._workload_of,
    ScaleOp: FactReader._workload_of,
    RollbackOp: FactReader._workload_of,
    DeletePodOp: FactReader._pod_of,
    CordonOp: FactReader._node_to_cordon,
    UncordonOp: FactReader._node_to_uncordon,
    DrainOp: FactReader._node_to_drain,
})

# What is read of the target alone (`FactReader.target`).
_TARGETS: dict[OperationType, Callable[[FactReader, Any], Awaitable[TargetFacts]]] = by_operation({
    RestartOp: FactReader._workload_alone_of,
    ScaleOp: FactReader._workload_alone_of,
    RollbackOp: FactReader._workload_alone_of,
    DeletePodOp: FactReader._pod_alone,
    CordonOp: FactReader._node_alone,
    UncordonOp: FactReader._node_alone,
    DrainOp: FactReader._node_alone,
})


def _missing(note: str) -> TargetFacts:
    return TargetFacts(exists=False, note=note)


def _node_note(name: str, node: JSON, *, cordon: bool) -> str | None:
    """What the card says of the node itself: already in the state asked for, or NotReady."""
    notes = []
    unschedulable = bool(spec(node).get("unschedulable"))
    if cordon and unschedulable:
        notes.append(f"node/{name} is already cordoned")
    if not cordon and not unschedulable:
        notes.append(f"node/{name} is already schedulable")
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("status") != "True":
        notes.append(f"node/{name} is NotReady")
    return "; ".join(notes) or None


def _any_selected(service: JSON, label_sets: Iterable[dict[str, str]]) -> bool:
    return any(_selects(service, labels) for labels in label_sets)


def _replica_counts(kind: str, workload: JSON) -> tuple[int | None, int | None]:
    """(desired, ready); a DaemonSet's desired count is the number of nodes it should run on."""
    status = workload.get("status")
    if kind == "daemonset":
        if not status:
            return 0, 0
        return int(status.get("desiredNumberScheduled") or 0), int(status.get("numberReady") or 0)
    replicas = spec(workload).get("replicas")
    ready = (status or {}).get("readyReplicas") or 0
    return int(replicas if replicas is not None else 1), int(ready)


def _update_strategy(kind: str, workload: JSON) -> str | None:
    """`spec.strategy.type` of a Deployment, `spec.updateStrategy.type` of a StatefulSet or DaemonSet."""
    strategy = spec(workload).get("strategy" if kind == "deployment" else "updateStrategy")
    return str(strategy.get("type") or "RollingUpdate") if isinstance(strategy, dict) else None
