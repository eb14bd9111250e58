"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io, application/json`; a plain
list works too (kubectl then prints NAME and AGE only), so this is for people reading the
sandbox with kubectl: the columns of a real API server for the kinds signoff acts on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from adapters.kubernetes.sandbox.common import JSON, _now


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def _age(obj: JSON) -> str:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    seconds = int((_now() - datetime.fromisoformat(str(created).replace("Z", "+00:00"))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _pod(obj: JSON) -> list[Any]:
    status = obj.get("status") or {}
    containers = status.get("containerStatuses") or []
    ready = sum(1 for c in containers if c.get("ready"))
    total = len((obj.get("spec") or {}).get("containers") or [])
    restarts = sum(int(c.get("restartCount", 0)) for c in containers)
    phase = status.get("phase", "Unknown")
    for container in containers:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            phase = waiting["reason"]
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    node = (obj.get("spec") or {}).get("nodeName", "<none>")
    return [f"{ready}/{total}", phase, restarts, _age(obj), status.get("podIP", "<none>"), node]


def _deployment(obj: JSON) -> list[Any]:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0), _age(obj)]


def _node(obj: JSON) -> list[Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready: JSON = next((c for c in conditions if c.get("type") == "Ready"), {})
    state = "Ready" if ready.get("status") == "True" else "NotReady"
    if (obj.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    version = ((obj.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return [state, "<none>", _age(obj), version]


_C = tuple[str, str, int]  # name, type, priority (1: only with -o wide)
_COLUMNS: dict[str, tuple[tuple[_C, ...], Callable[[JSON], list[Any]]]] = {
    "Pod": ((("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "integer", 0), ("Age", "string", 0),
             ("IP", "string", 1), ("Node", "string", 1)), _pod),
    "Deployment": ((("Ready", "string", 0), ("Up-to-date", "integer", 0), ("Available", "integer", 0),
                    ("Age", "string", 0)), _deployment),
    "Node": ((("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0), ("Version", "string", 0)),
             _node),
}


def as_table(payload: JSON) -> JSON:
    """A list (or one object) as a Table; rows carry the objects' metadata, as `includeObject=Metadata`."""
    listed = str(payload.get("kind", "")).endswith("List")
    items = payload.get("items") or [] if listed else [payload]
    kind = str(payload.get("kind", "")).removesuffix("List") if listed else str(payload.get("kind", ""))
    columns, cells = _COLUMNS.get(kind, (((("Age", "string", 0)),), lambda o: [_age(o)]))
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}]
    definitions += [{"name": n, "type": t, "format": "", "description": "", "priority": p} for n, t, p in columns]
    rows = [
        {
            "cells": [(item.get("metadata") or {}).get("name", ""), *cells(item)],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": item.get("metadata") or {}},
        }
        for item in items
    ]
    metadata = {"resourceVersion": str((payload.get("metadata") or {}).get("resourceVersion", ""))}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": definitions, "rows": rows}
