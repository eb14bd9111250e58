"""Operations the cluster could carry out but whose effect could never be seen: refused when requested.

A restart patches the pod template; a StatefulSet or DaemonSet with `updateStrategy: OnDelete`
then replaces no pod until someone deletes one, so the restart would sit in `verifying` until its
deadline (`kubectl rollout status` answers at once that it only follows RollingUpdate).
"""

from __future__ import annotations

from core.domain.cluster import TargetFacts
from core.domain.operations import Operation, RestartOp
from core.errors import Unverifiable


def refuse_unverifiable(op: Operation, facts: TargetFacts | None) -> None:
    """Raise `Unverifiable`, saying what works instead, for an operation that could never be verified."""
    if facts is None or not isinstance(op, RestartOp) or facts.update_strategy != "OnDelete":
        return
    pod = facts.pods[0] if facts.pods else f"{op.name}-0" if op.target == "statefulset" else "<pod>"
    raise Unverifiable(
        f"{op.target_ref} in {op.namespace} has updateStrategy OnDelete: a restart changes its pod template "
        "but replaces no pod, so it could never be verified (kubectl rollout status follows only "
        "RollingUpdate). What works: delete its pods one at a time, each once the previous one's "
        f"replacement is Ready, e.g. `request delete pod {pod} -n {op.namespace}` (one pod at a time)."
    )
