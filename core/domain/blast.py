"""The blast radius: what an operation touches, judged from facts read off the cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

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


class BlastRadius(BaseModel):
    model_config = ConfigDict(frozen=True)

    target_found: bool
    pods: int = 0
    pod_names: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    stateful: bool = False
    data_impact: str = "none"
    downtime: str = "none expected"
    current_replicas: int | None = None
    # A drain's evictions: `namespace/pod (owner)`, shown on the card.
    evictions: tuple[str, ...] = ()
    note: str | None = None
    # The cluster could not be read when the request was made: the risk floor assumed the worst case.
    facts_unknown: bool = False

    def summary(self) -> str:
        if self.facts_unknown:
            return f"⚠️ {self.note or 'could not read the cluster'}: the risk counts the worst case"
        if not self.target_found:
            return self.note or "target not found in the cluster: the request would end as blocked"
        services = ", ".join(self.services) if self.services else "none"
        text = (
            f"{self.pods} pod{'s' if self.pods != 1 else ''} · services: {services} · "
            f"data: {self.data_impact} · downtime: {self.downtime}"
        )
        if self.evictions:
            shown = ", ".join(self.evictions[:8])
            more = f" (+{len(self.evictions) - 8} more)" if len(self.evictions) > 8 else ""
            text += f" · evicts: {shown}{more}"
        return text


def assess(op: Operation, facts: TargetFacts) -> BlastRadius:
    if not facts.exists:
        return BlastRadius(
            target_found=False,
            note=facts.note or f"{op.target_ref} was not found: executing it would be blocked",
        )
    pods = len(facts.pods)
    data = _data_impact(facts)
    return BlastRadius(
        target_found=True,
        pods=pods,
        pod_names=facts.pods[:10],
        services=facts.services,
        stateful=facts.stateful,
        data_impact=data,
        downtime=_downtime(op, facts),
        current_replicas=facts.replicas,
        evictions=facts.evictions,
        note=facts.note,
    )


def _data_impact(facts: TargetFacts) -> str:
    if not facts.stateful:
        return "none (stateless)"
    if facts.volumes:
        return "stateful: volumes " + ", ".join(facts.volumes[:5]) + " stay attached"
    return "stateful workload"


def _downtime(op: Operation, facts: TargetFacts) -> str:
    return _DOWNTIME[type(op)](op, facts)


def _rolling_downtime(op: RestartOp | RollbackOp, facts: TargetFacts) -> str:
    if op.target == "daemonset":
        return "one node at a time (rolling)"
    if facts.replicas is not None and facts.replicas > 1:
        return "none expected (rolling, more than one replica)"
    return "outage while the single replica restarts"


def _scale_downtime(op: ScaleOp, facts: TargetFacts) -> str:
    replicas = facts.replicas
    if op.replicas == 0:
        return "outage: every pod stops"
    if replicas is not None and op.replicas < replicas:
        return f"capacity drops from {replicas} to {op.replicas} replicas"
    return "none expected (adds capacity)"


def _delete_downtime(op: DeletePodOp, facts: TargetFacts) -> str:
    if facts.controller:
        return f"brief: {facts.controller} recreates the pod"
    return "the pod is gone for good: no controller recreates it"


def _drain_downtime(op: DrainOp, facts: TargetFacts) -> str:
    if not facts.evictions:
        return "none: no pod to evict (the node is cordoned)"
    return (f"{len(facts.evictions)} pod(s) evicted and rescheduled elsewhere, "
            "one at a time as their PodDisruptionBudgets allow")


def _said(text: str) -> Callable[[Any, TargetFacts], str]:
    return lambda _op, _facts: text


_DOWNTIME: dict[OperationType, Callable[[Any, TargetFacts], str]] = by_operation({
    RestartOp: _rolling_downtime,
    ScaleOp: _scale_downtime,
    RollbackOp: _rolling_downtime,
    DeletePodOp: _delete_downtime,
    CordonOp: _said("none: running pods stay; new pods will not schedule on this node"),
    UncordonOp: _said("none: the node accepts new pods again"),
    DrainOp: _drain_downtime,
})
