"""What the core needs to know about a cluster, independent of any client library.

The Kubernetes adapter gathers `TargetFacts` and performs `apply` (the `Cluster` port in
core/ports.py); the core turns facts into a blast radius (a domain judgement) and outcomes
into request states.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from core.domain.pinning import Observed
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
    # A workload's update strategy (`spec.strategy.type` of a Deployment, `spec.updateStrategy.type` of a
    # StatefulSet or DaemonSet): with `OnDelete`, a changed template replaces no pod until one is deleted.
    update_strategy: str | None = None
    note: str | None = None
    # What a request pins of the target (its pod template; a rollback's revision; a pod's uid).
    observed: Observed | None = None


class ClusterResult(BaseModel):
    """What the API server answered to a successful (or dry-run) call."""

    model_config = ConfigDict(frozen=True)

    summary: str
    resource_version: str | None = None
    generation: int | None = None
    # What verification and the way back need: the Deployment revision before the call, and for
    # a deleted pod its uid and controlling owner ("ReplicaSet/api-7c9").
    revision: int | None = None
    uid: str | None = None
    owner: str | None = None


class PodTrouble(BaseModel):
    """Why one pod is not Ready, as its container statuses (and events) say."""

    model_config = ConfigDict(frozen=True)

    name: str
    reason: str
    restarts: int = 0
    # The container's last termination (`lastState.terminated`): why it last stopped, as the kubelet said.
    last_exit: int | None = None
    last_reason: str = ""
    last_message: str = ""

    def text(self) -> str:
        said = f"{self.name} {self.reason}" + (f" (restarted {self.restarts}×)" if self.restarts else "")
        if self.last_exit is not None or self.last_message:
            last = " ".join(p for p in (self.last_reason, f"exit {self.last_exit}" if self.last_exit is not None
                                        else "") if p)
            said += f", last terminated {last}" + (f": {self.last_message[:160]}" if self.last_message else "")
        return said

    def short(self) -> str:
        """`api-7d9f-x2: CrashLoopBackOff (restarts 2)`, as a progress note names a new pod."""
        return f"{self.name}: {self.reason} (restarts {self.restarts})"


class Progress(BaseModel):
    """One look at an operation's effect. `done`: it holds; `failed`: it never will (e.g. the
    Deployment's own ProgressDeadlineExceeded); otherwise still under way."""

    model_config = ConfigDict(frozen=True)

    done: bool = False
    failed: bool = False
    reason: str | None = None
    desired: int | None = None
    updated: int | None = None
    available: int | None = None
    ready: int | None = None
    waiting_for: str = ""
    achieved: str = ""
    deadline_s: int | None = None
    pods: tuple[PodTrouble, ...] = ()
    # The new pods (of the workload's newest template) and how each is doing, while it rolls out.
    new_pods: tuple[PodTrouble, ...] = ()
    # Set when a watch follows the effect: the key the cluster adapter wakes verification with.
    follow: str | None = None
    # A later change of the same target overtook this one (adapters/kubernetes/overtaken.py): ended, as done.
    overtaken: str | None = None

    def counts(self) -> str:
        """`2/3 updated · 1/3 available`, or what is awaited when there is nothing to count."""
        if self.desired is None:
            return self.waiting_for
        parts = []
        if self.updated is not None:
            parts.append(f"{self.updated}/{self.desired} updated")
        if self.available is not None:
            parts.append(f"{self.available}/{self.desired} available")
        elif self.ready is not None:
            parts.append(f"{self.ready}/{self.desired} ready")
        return " · ".join(parts) or self.waiting_for

    def fraction(self) -> tuple[int, int]:
        """Filled and total cells of the card's progress bar."""
        if not self.desired:
            return (1 if self.done else 0), 1
        got = self.available if self.available is not None else (self.ready or 0)
        return max(0, min(got, self.desired)), self.desired


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

