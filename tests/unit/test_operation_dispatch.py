"""Per-operation behaviour is looked up by operation type, and every kind has its entry everywhere."""

from __future__ import annotations

import pytest

from adapters.kubernetes.blast import _READERS
from adapters.kubernetes.executor import _APPLY, KubernetesCluster
from adapters.kubernetes.failures import Attempt
from adapters.kubernetes.observe import PROGRESS, WATCHED
from core.domain.blast import _DOWNTIME, assess
from core.domain.cluster import TargetFacts
from core.domain.operations import (
    OPERATION_TYPES,
    CordonOp,
    DeletePodOp,
    DrainOp,
    Operation,
    RestartOp,
    RollbackOp,
    ScaleOp,
    UncordonOp,
    by_operation,
    parse_operation,
)
from core.domain.policy import _FLOORS, Policy, Risk

FACTS = TargetFacts(exists=True, replicas=4, pods=("web-1",), controller="deployment/web")

# (operation, risk floor, downtime, what a failure says was being done)
EVERY_KIND: list[tuple[Operation, Risk, str, str]] = [
    (RestartOp(target="deployment", name="web", namespace="prod"), Risk.low,
     "none expected (rolling, more than one replica)", "restart deployment/web in prod"),
    (RestartOp(target="daemonset", name="agent", namespace="prod"), Risk.low,
     "one node at a time (rolling)", "restart daemonset/agent in prod"),
    (ScaleOp(target="deployment", name="web", namespace="prod", replicas=6), Risk.low,
     "none expected (adds capacity)", "scale deployment/web in prod to 6 replicas"),
    (ScaleOp(target="deployment", name="web", namespace="prod", replicas=1), Risk.high,
     "capacity drops from 4 to 1 replicas", "scale deployment/web in prod to 1 replicas"),
    (ScaleOp(target="statefulset", name="db", namespace="prod", replicas=0), Risk.high,
     "outage: every pod stops", "scale statefulset/db in prod to 0 replicas"),
    (RollbackOp(name="web", namespace="prod"), Risk.high,
     "none expected (rolling, more than one replica)", "roll back deployment/web in prod"),
    (DeletePodOp(name="web-1", namespace="prod"), Risk.low,
     "brief: deployment/web recreates the pod", "delete pod/web-1 in prod"),
    (CordonOp(name="node-1"), Risk.high,
     "none: running pods stay; new pods will not schedule on this node", "cordon node/node-1"),
    (UncordonOp(name="node-1"), Risk.low, "none: the node accepts new pods again", "uncordon node/node-1"),
    (DrainOp(name="node-1"), Risk.high, "none: no pod to evict (the node is cordoned)", "drain node/node-1"),
]


def test_the_examples_cover_every_operation_kind() -> None:
    assert {type(case[0]) for case in EVERY_KIND} == set(OPERATION_TYPES)


@pytest.mark.parametrize("table", [_FLOORS, _DOWNTIME, _APPLY, _READERS, PROGRESS, WATCHED],
                         ids=["floor", "downtime", "apply", "read", "progress", "watched"])
def test_every_dispatch_table_handles_every_kind(table: dict[type, object]) -> None:
    assert set(table) == set(OPERATION_TYPES)


@pytest.mark.parametrize(("op", "floor", "downtime", "doing"), EVERY_KIND, ids=[c[0].command() for c in EVERY_KIND])
def test_each_kind_is_dispatched(op: Operation, floor: Risk, downtime: str, doing: str) -> None:
    assert Policy().risk_floor(op, FACTS) is floor
    assert assess(op, FACTS).downtime == downtime
    assert Attempt(op=op).action == doing
    assert Attempt(op=op, dry_run=True).action == f"dry-run {doing}"
    assert parse_operation(op.command()) == op


def test_a_protected_namespace_outranks_every_kind() -> None:
    policy = Policy()
    for op, *_ in EVERY_KIND:
        if op.namespace is not None:
            moved = op.model_copy(update={"namespace": "kube-system"})
            assert policy.risk_floor(moved, FACTS) is Risk.critical


def test_an_incomplete_table_is_refused() -> None:
    with pytest.raises(TypeError, match="UncordonOp"):
        by_operation({t: None for t in OPERATION_TYPES if t is not UncordonOp})
    with pytest.raises(TypeError, match="KubernetesCluster"):
        by_operation({**{t: None for t in OPERATION_TYPES}, KubernetesCluster: None})  # type: ignore[dict-item]
