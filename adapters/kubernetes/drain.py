"""What a drain evicts, decided from the pods on the node (pure: no client import).

As `kubectl drain --ignore-daemonsets` does: DaemonSet pods stay (their controller would put them
straight back, and they tolerate the cordon), mirror pods stay (the kubelet owns them; the API
server cannot delete them), and every other pod is evicted through the Eviction API so that
PodDisruptionBudgets are respected. Pods already terminating are still waited for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# How long to wait before asking again after a 429 (a budget that allows no disruption now);
# doubles each round up to the cap, as a person re-running `kubectl drain` would.
RETRY_FIRST_S = 0.2
RETRY_CAP_S = 5.0
# The drain's own deadline (the real call waits this long at most): inside the execution lease
# (SIGNOFF_EXECUTION_LEASE, 120 s by default), so a slow drain is never swept as interrupted.
DRAIN_TIMEOUT_S = 90.0


def pod_key(pod: Any) -> str:
    """`namespace/name` of a client V1Pod."""
    meta = pod.metadata
    return f"{meta.namespace}/{meta.name}" if meta else ""


def controller_ref(pod: Any) -> Any | None:
    refs = pod.metadata.owner_references if pod.metadata else None
    return next((r for r in refs or [] if r.controller), None)


def skip_reason(pod: Any) -> str | None:
    """Why a drain leaves this pod alone, or None when it is evicted."""
    annotations = (pod.metadata.annotations if pod.metadata else None) or {}
    if MIRROR_ANNOTATION in annotations:
        return "mirror pod"
    ref = controller_ref(pod)
    if ref is not None and ref.kind == "DaemonSet":
        return "DaemonSet pod"
    return None


def evictable(pods: Iterable[Any]) -> list[Any]:
    """The pods a drain evicts, by namespace and name."""
    return sorted((p for p in pods if skip_reason(p) is None), key=pod_key)


def listing(keys: Iterable[str], limit: int = 5) -> str:
    """`a, b, c (+4 more)` for a sentence."""
    shown = list(keys)
    text = ", ".join(shown[:limit])
    return text + (f" (+{len(shown) - limit} more)" if len(shown) > limit else "")
