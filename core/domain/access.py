"""What the cluster's RBAC must allow a requester for each operation (`[execution] as = "requester"`), as the
attributes of a SubjectAccessReview (`authorization.k8s.io/v1`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

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


class Access(BaseModel):
    """One verb on one resource: a SubjectAccessReview's `resourceAttributes`."""

    model_config = ConfigDict(frozen=True)

    verb: str
    group: str = ""
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    def text(self) -> str:
        """`patch deployments.apps/api in prod`, as the refusal says it."""
        resource = f"{self.resource}.{self.group}" if self.group else self.resource
        if self.subresource:
            resource += f"/{self.subresource}"
        target = f"{resource}/{self.name}" if self.name else resource
        where = f" in {self.namespace}" if self.namespace else " (cluster-wide)"
        return f"{self.verb} {target}{where}"


def _workload(op: Any) -> tuple[Access, ...]:
    return (Access(verb="patch", group="apps", resource=f"{op.target}s", namespace=op.namespace, name=op.name),)


def _scale(op: ScaleOp) -> tuple[Access, ...]:
    return (Access(verb="patch", group="apps", resource=f"{op.target}s", subresource="scale",
                   namespace=op.namespace, name=op.name),)


def _rollback(op: RollbackOp) -> tuple[Access, ...]:
    return (*_workload(op), Access(verb="list", group="apps", resource="replicasets", namespace=op.namespace))


def _delete(op: DeletePodOp) -> tuple[Access, ...]:
    return (Access(verb="delete", resource="pods", namespace=op.namespace, name=op.name),)


def _node(op: Any) -> tuple[Access, ...]:
    return (Access(verb="patch", resource="nodes", name=op.name),)


def _drain(op: DrainOp) -> tuple[Access, ...]:
    # Cordon, then evict every pod of the node, whatever its namespace.
    return (*_node(op), Access(verb="list", resource="pods"),
            Access(verb="create", resource="pods", subresource="eviction"))


_NEEDED: dict[OperationType, Callable[[Any], tuple[Access, ...]]] = by_operation({
    RestartOp: _workload, ScaleOp: _scale, RollbackOp: _rollback, DeletePodOp: _delete,
    CordonOp: _node, UncordonOp: _node, DrainOp: _drain,
})


def access_needed(op: Operation) -> tuple[Access, ...]:
    """Every verb the operation's calls need, in the order they are made."""
    return _NEEDED[type(op)](op)
