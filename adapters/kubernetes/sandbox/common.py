"""Constants and small JSON helpers every part of the sandbox shares."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import structlog

from adapters.kubernetes.objects import POD_TEMPLATE_HASH, REVISION, pruned
from adapters.kubernetes.sandbox.resources import _Resource

log = structlog.get_logger(__name__)


JSON = dict[str, Any]
_T = TypeVar("_T")

SERVER_VERSION: JSON = {
    "major": "1",
    "minor": "31",
    "emulationMajor": "1",
    "emulationMinor": "31",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "30",
    "gitVersion": "v1.31.0",
    "gitCommit": "9edcffcde5595e8a5b1a35f88c421764e575afce",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T07:28:49Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CONTROLLER_REVISION_HASH = "controller-revision-hash"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

# Annotations the deployment controller never copies from a Deployment onto its ReplicaSets.
_NOT_COPIED_TO_RS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)

# Kubernetes' SafeEncodeString alphabet: no vowels, so generated names never spell words.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})



def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC)


def _clone(value: _T) -> _T:
    """A deep copy of JSON data; a JSON round trip is several times faster than copy.deepcopy."""
    return cast(_T, json.loads(json.dumps(value)))


def _encode(data: bytes, length: int) -> str:
    number = int.from_bytes(hashlib.sha256(data).digest(), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(_NAME_ALPHABET))
        chars.append(_NAME_ALPHABET[digit])
    return "".join(chars)


def _template_hash(template: JSON) -> str:
    return _encode(json.dumps(pruned(template), sort_keys=True).encode(), 10)


def _strip_hash(template: JSON | None, label: str = POD_TEMPLATE_HASH) -> JSON:
    template = _clone(template or {})
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(label, None)
    return template


def _meta(obj: JSON) -> JSON:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def _name(obj: JSON) -> str:
    return str(_meta(obj).get("name", ""))


def _namespace(obj: JSON) -> str:
    return str(_meta(obj).get("namespace") or "")


def _labels(obj: JSON) -> dict[str, str]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def _annotations(obj: JSON) -> dict[str, str]:
    meta = _meta(obj)
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
        meta["annotations"] = annotations
    return annotations


def _spec(obj: JSON) -> JSON:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = {}
        obj["spec"] = spec
    return spec


def _controller_ref(obj: JSON) -> JSON | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def _controller_uid(obj: JSON) -> str | None:
    ref = _controller_ref(obj)
    return str(ref.get("uid")) if ref else None


def _int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        scaled = total * int(value[:-1]) / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return 0


def _is_ready(pod: JSON) -> bool:
    if _meta(pod).get("deletionTimestamp"):
        return False
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def _set_optional(target: JSON, key: str, value: int) -> None:
    """Go's omitempty: zero counts disappear from status, so clients must cope with absence."""
    if value:
        target[key] = value
    else:
        target.pop(key, None)


def _without_item_type(obj: JSON) -> JSON:
    """Items of a list response carry no kind/apiVersion of their own, as on a real server."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


@dataclass(frozen=True)
class _Call:
    """One request addressed to a single object."""

    method: str
    resource: _Resource
    namespace: str | None
    name: str
    query: Mapping[str, str]
    content_type: str
    body: bytes
    dry_run: bool

