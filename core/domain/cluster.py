"""What the core needs to know about a cluster, independent of any client library.

The Kubernetes adapter gathers `TargetFacts` and performs `apply`; the core turns facts
into a blast radius (a domain judgement) and outcomes into request states.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from core.domain.operations import Operation
from core.errors import SignoffError


class TargetFacts(BaseModel):
    """Facts about an operation's target, read from the cluster when the request is made."""

    model_config = ConfigDict(frozen=True)

    exists: bool
    replicas: int | None = None
    ready_replicas: int | None = None
    pods: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    stateful: bool = False
    volumes: tuple[str, ...] = ()
    controller: str | None = None
    # A drain: the pods it evicts, each `namespace/name (owner)`; DaemonSet and mirror pods are not.
    evictions: tuple[str, ...] = ()
    note: str | None = None


class ClusterResult(BaseModel):
    """What the API server answered to a successful (or dry-run) call."""

    model_config = ConfigDict(frozen=True)

    summary: str
    resource_version: str | None = None
    generation: int | None = None


class ClusterError(SignoffError):
    """The cluster refused or could not perform a call. `reason` is the API's reason."""

    code = "cluster_error"

    def __init__(self, message: str, reason: str = "Unknown", status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class TargetMissing(ClusterError):
    code = "target_missing"


class ClusterRejected(ClusterError):
    """403, 409, 422 and other definite refusals by the API server."""

    code = "cluster_rejected"


class ClusterUnavailable(ClusterError):
    """Timeouts, connection failures and 5xx: the outcome of a write is unknown or it never ran."""

    code = "cluster_unavailable"


class Cluster(Protocol):
    async def check(self) -> str:
        """Reach the API server; return its version string or raise ClusterUnavailable."""
        ...

    async def inspect(self, op: Operation, *, fresh: bool = False) -> TargetFacts:
        """Read the target and what depends on it. Never writes. `fresh`: no cached facts."""
        ...

    async def apply(self, op: Operation, *, dry_run: bool) -> ClusterResult:
        """Perform the operation (server-side dry run when dry_run). Raises ClusterError."""
        ...
