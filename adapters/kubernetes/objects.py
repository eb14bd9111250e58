"""Facts about Kubernetes objects (as JSON) that the executor and the sandbox API server both need.

One copy: the sandbox must judge "is this template the same", "which revision is this" and "which
pods does this selector pick" exactly as the executor does, or tests against it prove nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

REVISION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH = "pod-template-hash"


def pruned(value: Any) -> Any:
    """Nulls and empty maps/lists removed: the API server treats them as absent (Go's omitempty,
    and what Semantic.DeepEqual compares)."""
    if isinstance(value, dict):
        out = {k: pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [pruned(v) for v in value]
    return value


def revision(obj: Mapping[str, Any]) -> int:
    """A Deployment's or ReplicaSet's `deployment.kubernetes.io/revision`, 0 when absent or bad."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def selector_query(match_labels: Mapping[str, str] | None,
                   expressions: Iterable[tuple[str, str, Iterable[str] | None]] = ()) -> str:
    """A LabelSelector as the query form the API takes: `app=api,tier in (a,b),!canary`."""
    parts = [f"{k}={v}" for k, v in sorted((match_labels or {}).items())]
    for key, operator, values in expressions:
        listed = ",".join(sorted(values or []))
        if operator == "In":
            parts.append(f"{key} in ({listed})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({listed})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector object in its JSON form (`matchLabels`, `matchExpressions`) as a query string."""
    if not selector:
        return ""
    expressions = ((str(e.get("key")), str(e.get("operator")), e.get("values"))
                   for e in selector.get("matchExpressions") or [])
    return selector_query(selector.get("matchLabels"), expressions)
