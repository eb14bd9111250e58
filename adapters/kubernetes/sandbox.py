"""An in-memory Kubernetes API server on loopback, for the demo, the console and every test.

It speaks enough of the real API (paths, `Status` errors, `dryRun=All`, resourceVersion
preconditions, strategic-merge / merge / JSON patches, the `scale` subresource) that the
production executor runs against it unchanged, and it simulates just enough of the
controllers (Deployment → ReplicaSet → Pod, StatefulSet, DaemonSet, the scheduler, node
taints, garbage collection) that the cluster stays plausible after each operation.

Controllers converge synchronously right after each persisted write, so tests never wait;
the write's own response is built before they run, as a real API server's is (a PATCH that
changes a Deployment's template answers with the old status, not the finished rollout).

The server runs in its own thread with its own event loop, so it keeps answering while the
caller's loop or thread blocks in the synchronous Kubernetes client. All state lives in
`_ApiServer`, which is plain synchronous code guarded by one re-entrant lock shared by the
HTTP handler and the test hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import random
import re
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, NamedTuple, TypeVar, cast

import structlog
from aiohttp import web

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

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
POD_TEMPLATE_HASH = "pod-template-hash"
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

_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


# --------------------------------------------------------------------------------------------
# Resources


@dataclass(frozen=True)
class _Resource:
    plural: str
    singular: str
    kind: str
    group: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    scalable: bool = False
    has_status: bool = True
    has_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/v1" if self.group else "v1"

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `pods`: how API server messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """`Deployment.apps`, `Pod`: how validation messages name a kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


_WORKLOAD_VERBS = ("get", "list", "patch", "update")

_RESOURCES: tuple[_Resource, ...] = (
    _Resource("namespaces", "namespace", "Namespace", "", False, ("get", "list"), ("ns",)),
    _Resource("nodes", "node", "Node", "", False, ("get", "list", "patch", "update"), ("no",)),
    _Resource("pods", "pod", "Pod", "", True, ("get", "list", "delete"), ("po",)),
    _Resource("services", "service", "Service", "", True, ("get", "list"), ("svc",)),
    _Resource(
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        "",
        True,
        ("get", "list"),
        ("pvc",),
    ),
    _Resource(
        "deployments",
        "deployment",
        "Deployment",
        "apps",
        True,
        _WORKLOAD_VERBS,
        ("deploy",),
        True,
        has_generation=True,
    ),
    _Resource(
        "statefulsets",
        "statefulset",
        "StatefulSet",
        "apps",
        True,
        _WORKLOAD_VERBS,
        ("sts",),
        True,
        has_generation=True,
    ),
    _Resource(
        "daemonsets",
        "daemonset",
        "DaemonSet",
        "apps",
        True,
        _WORKLOAD_VERBS,
        ("ds",),
        has_generation=True,
    ),
    _Resource(
        "replicasets",
        "replicaset",
        "ReplicaSet",
        "apps",
        True,
        _WORKLOAD_VERBS,
        ("rs",),
        has_generation=True,
    ),
)

_BY_PATH: dict[tuple[str, str], _Resource] = {(r.group, r.plural): r for r in _RESOURCES}
_BY_KIND: dict[str, _Resource] = {r.kind: r for r in _RESOURCES}
_ALIASES: dict[str, _Resource] = {}
for _r in _RESOURCES:
    for _alias in (_r.kind, _r.plural, _r.singular, *_r.short_names):
        _ALIASES[_alias.lower()] = _r


def _resource_for(kind: str) -> _Resource:
    """Accept `Deployment`, `deployment`, `deployments` or `deploy` in the test hooks."""
    resource = _ALIASES.get(kind.lower())
    if resource is None:
        raise ValueError(f"the sandbox does not serve {kind!r}")
    return resource


# --------------------------------------------------------------------------------------------
# Errors as the API server writes them


@dataclass(frozen=True)
class _Cause:
    field: str
    reason: str
    message: str

    def render(self) -> str:
        return f"{self.field}: {self.message}"


def _required(path: str, detail: str = "") -> _Cause:
    return _Cause(path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def _invalid_value(path: str, value: Any, detail: str) -> _Cause:
    return _Cause(path, "FieldValueInvalid", f"Invalid value: {_go_repr(value)}: {detail}")


def _go_repr(value: Any) -> str:
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{v}" for k, v in sorted(value.items()))
        return f"map[string]string{{{inner}}}"
    return json.dumps(value)


class _ApiError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: Sequence[_Cause] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details: JSON = {}
        if name is not None:
            self.details["name"] = name
        if group:
            self.details["group"] = group
        if kind is not None:
            self.details["kind"] = kind
        if causes:
            self.details["causes"] = [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes]

    def status(self) -> JSON:
        return _status_object(self.code, self.reason, self.message, self.details)


def _status_object(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _bad_request(message: str) -> _ApiError:
    return _ApiError(400, "BadRequest", message)


def _not_found(resource: _Resource, name: str) -> _ApiError:
    return _ApiError(
        404,
        "NotFound",
        f'{resource.qualified} "{name}" not found',
        name=name,
        group=resource.group,
        kind=resource.plural,
    )


def _conflict(resource: _Resource, name: str, why: str) -> _ApiError:
    return _ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": {why}',
        name=name,
        group=resource.group,
        kind=resource.plural,
    )


def _invalid(resource: _Resource, name: str, causes: Sequence[_Cause], kind: str | None = None) -> _ApiError:
    kind_name = kind or resource.group_kind
    rendered = [c.render() for c in causes]
    listed = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    return _ApiError(
        422,
        "Invalid",
        f'{kind_name} "{name}" is invalid: {listed}',
        name=name,
        group=resource.group,
        kind=kind_name.split(".")[0],
        causes=causes,
    )


_METHOD_NOT_ALLOWED = _ApiError(
    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
)


def _path_not_found() -> _ApiError:
    return _ApiError(404, "NotFound", "the server could not find the requested resource")


# --------------------------------------------------------------------------------------------
# Patches


class _PatchError(Exception):
    pass


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge, null deletes, everything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return _clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


# patchMergeKey of the list fields a client is likely to patch; other lists are replaced.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "taints": "key",
    "addresses": "type",
}
_MERGED_PRIMITIVE_LISTS = frozenset({"finalizers"})


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and "$patch" in item


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _strategic_merge(target: Any, patch: Any) -> Any:
    """The subset of strategic merge patch real clients send.

    Maps merge recursively and null deletes; lists of objects with a known patchMergeKey
    merge element by element; other lists replace; `$patch: replace|delete`,
    `$retainKeys`, `$deleteFromPrimitiveList/…` and `$setElementOrder/…` are honoured (the
    last one only by ignoring it: order is not observable through the sandbox).
    """
    if not isinstance(patch, dict):
        return _clone(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return None
    if directive is not None:
        raise _PatchError(f"unknown patch directive {directive!r}")
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            existing = result.get(name) or []
            result[name] = [item for item in existing if item not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
            continue
        merged = (
            _merge_list(key, result.get(key), value)
            if isinstance(value, list)
            else _strategic_merge(result.get(key), value)
        )
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(key: str, current: Any, items: list[Any]) -> list[Any]:
    if any(_is_directive(i) and i.get("$patch") == "replace" for i in items):
        return [_strip_directives(i) for i in items if not _is_directive(i)]
    if key in _MERGED_PRIMITIVE_LISTS and not any(isinstance(i, dict) for i in items):
        merged = list(current or [])
        merged.extend(i for i in items if i not in merged)
        return merged
    merge_key = _MERGE_KEYS.get(key)
    if key == "ports":
        merge_key = "containerPort" if any(isinstance(i, dict) and "containerPort" in i for i in items) else "port"
    if merge_key is None or not isinstance(current, list) or not all(isinstance(i, dict) for i in items):
        return [_strip_directives(i) for i in items if not _is_directive(i)]
    result = [_clone(i) for i in current]
    for item in items:
        wanted = item.get(merge_key)
        index = next(
            (
                n
                for n, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(merge_key) == wanted
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = _strategic_merge(result[index], item)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise _PatchError(f"invalid JSON pointer {path!r}")
    if path == "":
        return []
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _list_index(token: str, length: int, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit():
        raise _PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise _PatchError(f"array index {index} is out of bounds")
    return index


def _pointer_get(doc: Any, tokens: list[str]) -> Any:
    current = doc
    for token in tokens:
        if isinstance(current, dict):
            if token not in current:
                raise _PatchError(f"path /{'/'.join(tokens)} does not exist")
            current = current[token]
        elif isinstance(current, list):
            current = current[_list_index(token, len(current), allow_end=False)]
        else:
            raise _PatchError(f"path /{'/'.join(tokens)} does not exist")
    return current


def _pointer_add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _pointer_get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(last, len(parent), allow_end=True), value)
    else:
        raise _PatchError(f"cannot add to /{'/'.join(tokens[:-1])}")
    return doc


def _pointer_remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise _PatchError("cannot remove the whole document")
    parent = _pointer_get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchError(f"path /{'/'.join(tokens)} does not exist")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_list_index(last, len(parent), allow_end=False)]
    else:
        raise _PatchError(f"path /{'/'.join(tokens)} does not exist")
    return doc


def _json_patch(doc: Any, operations: list[Any]) -> Any:
    """RFC 6902, all six operations."""
    doc = _clone(doc)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise _PatchError("every operation needs an `op`")
        op = operation["op"]
        path = _pointer(operation.get("path"))
        if op in ("add", "replace", "test") and "value" not in operation:
            raise _PatchError(f"`{op}` needs a `value`")
        if op == "add":
            doc = _pointer_add(doc, path, _clone(operation["value"]))
        elif op == "remove":
            doc = _pointer_remove(doc, path)
        elif op == "replace":
            _pointer_get(doc, path)
            doc = _pointer_add(_pointer_remove(doc, path) if path else doc, path, _clone(operation["value"]))
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from"))
            value = _clone(_pointer_get(doc, source))
            if op == "move":
                doc = _pointer_remove(doc, source)
            doc = _pointer_add(doc, path, value)
        elif op == "test":
            if _pointer_get(doc, path) != operation["value"]:
                raise _PatchError(f"test operation on {operation.get('path')} failed")
        else:
            raise _PatchError(f"unknown operation {op!r}")
    return doc


# --------------------------------------------------------------------------------------------
# Selectors


class _Requirement(NamedTuple):
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "=":
            return present and value in self.values
        if self.operator == "!=":
            return not present or value not in self.values
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "notin":
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        return not present


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EQUALITY = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_SET = re.compile(rf"\s*({_KEY})\s+(in|notin)\s+\(([^()]*)\)\s*")
_EXISTS = re.compile(rf"\s*(!?)\s*({_KEY})\s*")
_LABEL_VALUE = re.compile(rf"^{_VALUE}$")


def _split_selector(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _parse_label_selector(text: str) -> list[_Requirement]:
    requirements: list[_Requirement] = []
    if not text.strip():
        return requirements
    for part in _split_selector(text):
        if match := _EQUALITY.fullmatch(part):
            operator = "!=" if match.group(3) == "!=" else "="
            requirements.append(_Requirement(match.group(1), operator, frozenset({match.group(4)})))
        elif match := _SET.fullmatch(part):
            values = frozenset(v.strip() for v in match.group(4).split(",") if v.strip())
            requirements.append(_Requirement(match.group(1), match.group(3), values))
        elif match := _EXISTS.fullmatch(part):
            operator = "!" if match.group(1) else "exists"
            requirements.append(_Requirement(match.group(2), operator, frozenset()))
        else:
            raise _bad_request(f"unable to parse requirement: {part.strip()!r} in label selector {text!r}")
    return requirements


_POD_FIELDS = {
    "metadata.name": ("metadata", "name"),
    "metadata.namespace": ("metadata", "namespace"),
    "spec.nodeName": ("spec", "nodeName"),
    "spec.restartPolicy": ("spec", "restartPolicy"),
    "spec.schedulerName": ("spec", "schedulerName"),
    "spec.serviceAccountName": ("spec", "serviceAccountName"),
    "status.phase": ("status", "phase"),
    "status.podIP": ("status", "podIP"),
}
_COMMON_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}


def _field_filter(resource: _Resource, text: str) -> Callable[[JSON], bool]:
    known = _POD_FIELDS if resource.kind == "Pod" else _COMMON_FIELDS
    checks: list[tuple[tuple[str, str], bool, str]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = re.fullmatch(r"\s*([A-Za-z.]+)\s*(==|=|!=)\s*([^,]*?)\s*", part)
        if not match:
            raise _bad_request(f"invalid field selector: {part!r}")
        if match.group(1) not in known:
            raise _bad_request(f"field label not supported: {match.group(1)}")
        checks.append((known[match.group(1)], match.group(2) != "!=", match.group(3)))

    def accept(obj: JSON) -> bool:
        for (section, key), equal, value in checks:
            actual = (obj.get(section) or {}).get(key) or ""
            if (actual == value) != equal:
                return False
        return True

    return accept


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector object as the query-string form (`app=api,tier in (a,b)`)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = ",".join(sorted(expression.get("values") or []))
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    if not selector:
        return False
    return all(r.matches(labels) for r in _parse_label_selector(selector_string(selector)))


# --------------------------------------------------------------------------------------------
# Small helpers


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime:
    return datetime.now(UTC)


def _clone(value: _T) -> _T:
    """A deep copy of JSON data; a JSON round trip is several times faster than copy.deepcopy."""
    return cast(_T, json.loads(json.dumps(value)))


def _normal(value: Any) -> Any:
    """Drop nulls and empty maps/lists, as Go's omitempty and Semantic.DeepEqual do."""
    if isinstance(value, dict):
        out = {k: _normal(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _encode(data: bytes, length: int) -> str:
    number = int.from_bytes(hashlib.sha256(data).digest(), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(_NAME_ALPHABET))
        chars.append(_NAME_ALPHABET[digit])
    return "".join(chars)


def _template_hash(template: JSON) -> str:
    return _encode(json.dumps(_normal(template), sort_keys=True).encode(), 10)


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


def _revision(obj: JSON) -> int:
    value = (_meta(obj).get("annotations") or {}).get(REVISION, "0")
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


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


# --------------------------------------------------------------------------------------------
# The API server's state and semantics (synchronous, guarded by SandboxCluster's lock)


class _Objects(dict[tuple[str, str, str], JSON]):
    """The store, indexed by kind and by controlling owner: the controllers look objects up by
    both on every write, and scanning everything made each write quadratic in the cluster's size."""

    def __init__(self) -> None:
        super().__init__()
        self.by_kind: dict[str, dict[tuple[str, str, str], JSON]] = {}
        self.by_owner: dict[tuple[str, str], dict[tuple[str, str, str], JSON]] = {}

    def __setitem__(self, key: tuple[str, str, str], obj: JSON) -> None:
        self._unindex(key)
        super().__setitem__(key, obj)
        self.by_kind.setdefault(key[0], {})[key] = obj
        owner = _controller_uid(obj)
        if owner is not None:
            self.by_owner.setdefault((key[0], owner), {})[key] = obj

    def pop(self, key: tuple[str, str, str], default: JSON | None = None) -> JSON | None:  # type: ignore[override]
        self._unindex(key)
        return super().pop(key, default)

    def _unindex(self, key: tuple[str, str, str]) -> None:
        old = self.get(key)
        if old is None:
            return
        self.by_kind.get(key[0], {}).pop(key, None)
        owner = _controller_uid(old)
        if owner is not None:
            self.by_owner.get((key[0], owner), {}).pop(key, None)


class _ApiServer:
    def __init__(self, *, rng_seed: int = 0) -> None:
        self.objects = _Objects()
        self.resource_version = 1000
        self.rng = random.Random(rng_seed)
        self.address = "127.0.0.1:0"
        self._ip_counter = 10

    # ---- store

    def find(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        return self.objects.get((kind, namespace or "", name))

    def all(self, kind: str, namespace: str | None = None) -> list[JSON]:
        found = [
            obj for (_, ns, _), obj in self.objects.by_kind.get(kind, {}).items()
            if namespace is None or ns == namespace
        ]
        return sorted(found, key=lambda o: (_namespace(o), _name(o)))

    def _next_rv(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def _store(self, obj: JSON) -> JSON:
        """Persist `obj` with a fresh resourceVersion (every write bumps the global counter)."""
        _meta(obj)["resourceVersion"] = self._next_rv()
        self.objects[(obj["kind"], _namespace(obj), _name(obj))] = obj
        return obj

    def _save(self, obj: JSON) -> JSON:
        """Persist a controller's change only if something changed, like a real no-op update."""
        current = self.find(obj["kind"], _namespace(obj), _name(obj))
        if current is not None and _same_object(current, obj):
            return current
        return self._store(obj)

    def _remove(self, kind: str, namespace: str, name: str) -> JSON | None:
        return self.objects.pop((kind, namespace, name), None)

    def _uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _suffix(self, length: int = 5) -> str:
        return "".join(self.rng.choice(_NAME_ALPHABET) for _ in range(length))

    # ---- test hooks (called under the lock)

    def put(self, obj: JSON, *, reconcile: bool = True) -> JSON:
        obj = _clone(obj)
        resource = _BY_KIND.get(str(obj.get("kind", "")))
        if resource is None:
            raise ValueError(f"the sandbox does not serve kind {obj.get('kind')!r}")
        obj["apiVersion"] = resource.api_version
        meta = _meta(obj)
        if not meta.get("name"):
            raise ValueError("an object needs metadata.name")
        if resource.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        existing = self.find(resource.kind, meta.get("namespace"), meta["name"])
        meta.setdefault("uid", existing["metadata"]["uid"] if existing else self._uid())
        meta.setdefault("creationTimestamp", existing["metadata"]["creationTimestamp"] if existing else _ts(_now()))
        self._default(resource, obj)
        if resource.has_generation:
            if existing is None:
                meta.setdefault("generation", 1)
            elif _normal(existing.get("spec")) != _normal(obj.get("spec")):
                meta["generation"] = int(existing["metadata"].get("generation", 1)) + 1
            else:
                meta.setdefault("generation", existing["metadata"].get("generation", 1))
        if resource.kind == "Pod":
            self._complete_pod(obj)
        self._store(obj)
        if reconcile:
            self.reconcile()
        return _clone(self.find(resource.kind, meta.get("namespace"), meta["name"]) or obj)

    def delete_object(self, kind: str, namespace: str | None, name: str) -> bool:
        resource = _resource_for(kind)
        removed = self._remove(resource.kind, namespace or "" if resource.namespaced else "", name)
        if removed is not None:
            self.reconcile()
        return removed is not None

    # ---- HTTP semantics

    def handle(
        self, method: str, path: str, query: Mapping[str, str], content_type: str, body: bytes
    ) -> tuple[int, JSON]:
        try:
            return self._handle(method, path, query, content_type, body)
        except _ApiError as error:
            return error.code, error.status()

    def _handle(
        self, method: str, path: str, query: Mapping[str, str], content_type: str, body: bytes
    ) -> tuple[int, JSON]:
        discovery = self._discovery(path)
        if discovery is not None:
            if method != "GET":
                raise _METHOD_NOT_ALLOWED
            return 200, discovery
        resource, namespace, name, subresource = self._route(path)
        dry_run = self._dry_run(method, query)
        if name is None:
            if method != "GET":
                raise _METHOD_NOT_ALLOWED
            return 200, self._list(resource, namespace, query)
        call = _Call(method, resource, namespace, name, query, content_type, body, dry_run)
        if subresource == "scale":
            return 200, self._scale(call)
        if subresource is not None:
            raise _path_not_found()
        if method == "GET":
            return 200, self._require(resource, namespace, name)
        if method == "PATCH" and "patch" in resource.verbs:
            current = self._require(resource, namespace, name)
            return 200, self._update(call, current, self._apply_patch(content_type, current, body))
        if method == "PUT" and "update" in resource.verbs:
            return 200, self._replace(call, self._require(resource, namespace, name))
        if method == "DELETE" and "delete" in resource.verbs:
            return 200, self._delete(call)
        raise _METHOD_NOT_ALLOWED

    def _discovery(self, path: str) -> JSON | None:
        path = path.rstrip("/") or "/"
        if path == "/version":
            return dict(SERVER_VERSION)
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.address}],
            }
        if path == "/apis":
            version = {"groupVersion": "apps/v1", "version": "v1"}
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [{"name": "apps", "versions": [version], "preferredVersion": version}],
            }
        for group, prefix in (("", "/api/v1"), ("apps", "/apis/apps/v1")):
            if path == prefix:
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": "apps/v1" if group else "v1",
                    "resources": self._resource_list(group),
                }
        return None

    @staticmethod
    def _resource_list(group: str) -> list[JSON]:
        resources: list[JSON] = []
        for r in _RESOURCES:
            if r.group != group:
                continue
            resources.append(
                {
                    "name": r.plural,
                    "singularName": r.singular,
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": list(r.verbs),
                    "shortNames": list(r.short_names),
                }
            )
            if r.scalable:
                resources.append(
                    {
                        "name": f"{r.plural}/scale",
                        "singularName": "",
                        "namespaced": True,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return resources

    @staticmethod
    def _route(path: str) -> tuple[_Resource, str | None, str | None, str | None]:
        segments = [s for s in path.split("/") if s]
        if segments[:2] == ["api", "v1"]:
            group, rest = "", segments[2:]
        elif len(segments) >= 3 and segments[0] == "apis" and segments[2] == "v1":
            group, rest = segments[1], segments[3:]
        else:
            raise _path_not_found()
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _path_not_found()
        resource = _BY_PATH.get((group, rest[0]))
        if resource is None or (namespace is not None and not resource.namespaced):
            raise _path_not_found()
        if namespace is None and resource.namespaced and len(rest) > 1:
            # Namespaced objects are only listed across namespaces, never addressed without one.
            raise _path_not_found()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        return resource, namespace, name, subresource

    @staticmethod
    def _dry_run(method: str, query: Mapping[str, str]) -> bool:
        if method not in _WRITE_METHODS or "dryRun" not in query:
            return False
        value = query["dryRun"]
        if value != "All":
            raise _bad_request(f'invalid dryRun value {value!r}: the only supported value is "All"')
        return True

    def _require(self, resource: _Resource, namespace: str | None, name: str) -> JSON:
        obj = self.find(resource.kind, namespace, name)
        if obj is None:
            raise _not_found(resource, name)
        return obj

    def _list(self, resource: _Resource, namespace: str | None, query: Mapping[str, str]) -> JSON:
        if query.get("watch") in ("true", "1"):
            raise _bad_request("the sandbox API server does not support watch")
        items = self.all(resource.kind, namespace)
        if query.get("labelSelector"):
            requirements = _parse_label_selector(query["labelSelector"])
            items = [o for o in items if all(r.matches(_labels(o)) for r in requirements)]
        if query.get("fieldSelector"):
            accept = _field_filter(resource, query["fieldSelector"])
            items = [o for o in items if accept(o)]
        return {
            "apiVersion": resource.api_version,
            "kind": f"{resource.kind}List",
            "metadata": {"resourceVersion": str(self.resource_version)},
            "items": [_without_item_type(o) for o in items],
        }

    # ---- writes

    @staticmethod
    def _decode(body: bytes) -> Any:
        if not body:
            raise _bad_request("the request body is empty")
        try:
            return json.loads(body)
        except ValueError as error:
            raise _bad_request(f"the body of the request was in an unknown format: {error}") from None

    def _apply_patch(self, content_type: str, current: JSON, body: bytes) -> Any:
        document = self._decode(body)
        try:
            if content_type == "application/json-patch+json":
                if not isinstance(document, list):
                    raise _bad_request("a JSON patch must be a list of operations")
                return _json_patch(current, document)
            if content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(document, dict):
                    raise _bad_request("a merge patch must be a JSON object")
                if content_type == "application/merge-patch+json":
                    return _merge_patch(_clone(current), document)
                return _strategic_merge(_clone(current), document)
        except _PatchError as error:
            raise _ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {error}",
            ) from None
        if content_type.startswith("application/apply-patch"):
            raise _ApiError(415, "UnsupportedMediaType", "the sandbox does not implement server-side apply")
        raise _ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format ({content_type or 'no content type'}) - "
            "accepted media types include: application/json-patch+json, application/merge-patch+json, "
            "application/strategic-merge-patch+json",
        )

    def _replace(self, call: _Call, current: JSON) -> JSON:
        resource = call.resource
        if call.content_type not in ("application/json", ""):
            raise _ApiError(415, "UnsupportedMediaType", f"unsupported media type {call.content_type!r}")
        new = self._decode(call.body)
        if not isinstance(new, dict):
            raise _bad_request("the body must be a JSON object")
        if new.get("kind") not in (None, resource.kind):
            raise _bad_request(f"the kind in the data ({new.get('kind')}) does not match {resource.kind}")
        if new.get("apiVersion") not in (None, resource.api_version):
            raise _bad_request(
                f"the API version in the data ({new.get('apiVersion')}) does not match the expected "
                f"API version ({resource.api_version})"
            )
        return self._update(call, current, new)

    def _update(self, call: _Call, current: JSON, proposed: Any) -> JSON:
        """The common tail of PATCH and PUT: preconditions, defaulting, validation, persistence."""
        resource, namespace, name = call.resource, call.namespace, call.name
        if not isinstance(proposed, dict) or not isinstance(proposed.get("metadata", {}), dict):
            raise _bad_request("the object and its metadata must be JSON objects")
        new: JSON = _clone(proposed)
        meta = _meta(new)
        if meta.get("name", name) != name:
            raise _bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if resource.namespaced and meta.get("namespace", namespace) != namespace:
            raise _bad_request("the namespace of the provided object does not match the namespace sent on the request")
        current_meta = current["metadata"]
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv not in (None, "") and wanted_rv != current_meta["resourceVersion"]:
            raise _conflict(
                resource,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if meta.get("uid") not in (None, "", current_meta["uid"]):
            raise _conflict(
                resource,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {current_meta['uid']}",
            )
        self._check_types(resource, new)
        # Fields the server owns: a client can neither set nor clear them through an update.
        meta["name"] = name
        if resource.namespaced:
            meta["namespace"] = namespace
        for key in ("uid", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp"):
            if key in current_meta:
                meta[key] = current_meta[key]
            else:
                meta.pop(key, None)
        new["kind"], new["apiVersion"] = resource.kind, resource.api_version
        if resource.has_status:
            if "status" in current:
                new["status"] = _clone(current["status"])
            else:
                new.pop("status", None)
        self._default(resource, new)
        causes = self._validate(resource, new, current)
        if causes:
            raise _invalid(resource, name, causes)
        if resource.has_generation and _normal(new.get("spec")) != _normal(current.get("spec")):
            meta["generation"] = int(current_meta.get("generation", 1)) + 1
        if _same_object(current, new):
            return _clone(current)
        if call.dry_run:
            return new
        self._store(new)
        response = _clone(new)
        if new["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
            self.reconcile(namespace, workload=new)
        else:
            self.reconcile(namespace if resource.namespaced else None)
        return response

    def _scale(self, call: _Call) -> JSON:
        method, resource, namespace, name = call.method, call.resource, call.namespace, call.name
        content_type, body = call.content_type, call.body
        if not resource.scalable:
            raise _path_not_found()
        current = self._require(resource, namespace, name)
        scale = self._scale_of(current)
        if method == "GET":
            return scale
        if method == "PATCH":
            new_scale = self._apply_patch(content_type, scale, body)
        elif method == "PUT":
            new_scale = self._decode(body)
        else:
            raise _METHOD_NOT_ALLOWED
        if not isinstance(new_scale, dict):
            raise _bad_request("a Scale must be a JSON object")
        replicas = (new_scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise _bad_request(
                f"json: cannot unmarshal {type(replicas).__name__} into Go struct field "
                "ScaleSpec.spec.replicas of type int32"
            )
        if replicas < 0:
            causes = [_invalid_value("spec.replicas", replicas, "must be greater than or equal to 0")]
            raise _invalid(resource, name, causes, kind="Scale.autoscaling")
        workload = _clone(current)
        _spec(workload)["replicas"] = replicas
        scale_meta = new_scale.get("metadata") or {}
        for key in ("resourceVersion", "uid"):
            if key in scale_meta:
                _meta(workload)[key] = scale_meta[key]
            else:
                _meta(workload).pop(key, None)
        return self._scale_of(self._update(call, current, workload))

    @staticmethod
    def _scale_of(obj: JSON) -> JSON:
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "creationTimestamp": meta["creationTimestamp"],
            },
            "spec": {"replicas": int(obj["spec"].get("replicas", 0))},
            "status": {
                "replicas": int((obj.get("status") or {}).get("replicas", 0)),
                "selector": selector_string(obj["spec"].get("selector")),
            },
        }

    def _delete(self, call: _Call) -> JSON:
        resource, namespace, name, query, body = (
            call.resource,
            call.namespace,
            call.name,
            call.query,
            call.body,
        )
        dry_run = call.dry_run
        current = self._require(resource, namespace, name)
        options = self._decode(body) if body.strip() else {}
        if not isinstance(options, dict):
            raise _bad_request("DeleteOptions must be a JSON object")
        if options.get("dryRun"):
            if options["dryRun"] != ["All"]:
                raise _bad_request(f'invalid dryRun value {options["dryRun"]!r}: the only supported value is "All"')
            dry_run = True
        preconditions = options.get("preconditions") or {}
        for key in ("uid", "resourceVersion"):
            wanted = preconditions.get(key)
            actual = current["metadata"].get(key)
            if wanted is not None and wanted != actual:
                label = "UID" if key == "uid" else "ResourceVersion"
                raise _conflict(
                    resource,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}",
                )
        grace: Any = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        if grace is None:
            grace = _spec(current).get("terminationGracePeriodSeconds", 30)
        try:
            grace = int(grace)
        except (TypeError, ValueError):
            raise _bad_request(f"invalid gracePeriodSeconds {grace!r}") from None
        if grace < 0:
            raise _bad_request("gracePeriodSeconds must not be negative")
        pod = _clone(current)
        meta = _meta(pod)
        meta["deletionTimestamp"] = _ts(_now() + timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        if dry_run:
            return pod
        # The sandbox's containers stop at once on SIGTERM, so the kubelet finalises the pod
        # immediately: it is gone from the store and its controller replaces it right away.
        meta["resourceVersion"] = self._next_rv()
        self._remove(resource.kind, namespace or "", name)
        self.reconcile(namespace or None)
        return pod

    # ---- defaulting and validation

    def _default(self, resource: _Resource, obj: JSON) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        kind = resource.kind
        if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            spec.setdefault("replicas", 1)
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if isinstance(strategy, dict) and strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy.setdefault("type", "RollingUpdate")
                rolling = strategy.setdefault("rollingUpdate", {})
                if isinstance(rolling, dict):
                    rolling.setdefault("maxSurge", "25%")
                    rolling.setdefault("maxUnavailable", "25%")
        if kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
            spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
            for claim in spec.get("volumeClaimTemplates") or []:
                if isinstance(claim, dict):
                    claim.setdefault("apiVersion", "v1")
                    claim.setdefault("kind", "PersistentVolumeClaim")
                    if isinstance(claim.get("spec"), dict):
                        claim["spec"].setdefault("volumeMode", "Filesystem")
                    claim.setdefault("status", {"phase": "Pending"})
        if kind == "DaemonSet":
            spec.setdefault(
                "updateStrategy",
                {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            )
        template = spec.get("template")
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet") and isinstance(template, dict):
            pod_spec = template.get("spec")
            if isinstance(pod_spec, dict):
                _default_pod_spec(pod_spec)
        if kind == "Pod":
            _default_pod_spec(spec)

    @staticmethod
    def _check_types(resource: _Resource, obj: JSON) -> None:
        """Decoding errors: a real server rejects wrongly-typed fields with 400 before validating."""

        def fail(path: str, go_type: str, value: Any) -> _ApiError:
            return _bad_request(
                f"json: cannot unmarshal {type(value).__name__} into Go struct field {path} of type {go_type}"
            )

        meta = obj["metadata"]
        for key in ("labels", "annotations"):
            value = meta.get(key)
            if value is None:
                continue
            if not isinstance(value, dict):
                raise fail(f"ObjectMeta.metadata.{key}", "map[string]string", value)
            for item in value.values():
                if not isinstance(item, str):
                    raise fail(f"ObjectMeta.metadata.{key}", "string", item)
        spec = obj.get("spec")
        if spec is None:
            return
        if not isinstance(spec, dict):
            raise fail(f"{resource.kind}.spec", f"v1.{resource.kind}Spec", spec)
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool)):
            raise fail(f"{resource.kind}Spec.spec.replicas", "int32", replicas)
        unschedulable = spec.get("unschedulable")
        if resource.kind == "Node" and unschedulable is not None and not isinstance(unschedulable, bool):
            raise fail("NodeSpec.spec.unschedulable", "bool", unschedulable)
        template = spec.get("template")
        if template is not None and not isinstance(template, dict):
            raise fail(f"{resource.kind}Spec.spec.template", "v1.PodTemplateSpec", template)
        if isinstance(template, dict):
            template_meta = template.get("metadata")
            if template_meta is not None and not isinstance(template_meta, dict):
                raise fail("PodTemplateSpec.spec.template.metadata", "v1.ObjectMeta", template_meta)
            for key in ("labels", "annotations"):
                value = (template_meta or {}).get(key)
                if value is not None and (
                    not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
                ):
                    raise fail(f"ObjectMeta.spec.template.metadata.{key}", "map[string]string", value)
            containers = (template.get("spec") or {}).get("containers")
            if containers is not None and (
                not isinstance(containers, list) or not all(isinstance(c, dict) for c in containers)
            ):
                raise fail("PodSpec.spec.template.spec.containers", "[]v1.Container", containers)

    @staticmethod
    def _validate(resource: _Resource, obj: JSON, old: JSON | None) -> list[_Cause]:
        causes: list[_Cause] = []
        for key, value in _labels(obj).items():
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                causes.append(_invalid_value("metadata.labels", value, f"a valid label value is required for {key!r}"))
        if resource.kind not in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
            return causes
        spec = _spec(obj)
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            causes.append(_invalid_value("spec.replicas", replicas, "must be greater than or equal to 0"))
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.append(_required("spec.selector"))
            selector = None
        elif old is not None and _normal(selector) != _normal(_spec(old).get("selector")):
            causes.append(_invalid_value("spec.selector", selector.get("matchLabels", {}), "field is immutable"))
        template = spec.get("template")
        if not isinstance(template, dict):
            causes.append(_required("spec.template"))
            return causes
        template_labels = (template.get("metadata") or {}).get("labels") or {}
        if selector is not None and not _selector_matches(selector, template_labels):
            causes.append(
                _invalid_value(
                    "spec.template.metadata.labels",
                    template_labels,
                    "`selector` does not match template `labels`",
                )
            )
        for key, value in template_labels.items():
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                causes.append(
                    _invalid_value(
                        "spec.template.metadata.labels", value, f"a valid label value is required for {key!r}"
                    )
                )
        containers = (template.get("spec") or {}).get("containers") or []
        if not containers:
            causes.append(_required("spec.template.spec.containers"))
        seen: set[str] = set()
        for index, container in enumerate(containers):
            where = f"spec.template.spec.containers[{index}]"
            container_name = container.get("name")
            if not container_name:
                causes.append(_required(f"{where}.name"))
            elif container_name in seen:
                causes.append(
                    _Cause(
                        f"{where}.name",
                        "FieldValueDuplicate",
                        f"Duplicate value: {json.dumps(container_name)}",
                    )
                )
            else:
                seen.add(str(container_name))
            if not container.get("image"):
                causes.append(_required(f"{where}.image"))
        return causes

    # ---- controllers

    def reconcile(self, namespace: str | None = None, workload: JSON | None = None) -> None:
        """Run the simulated controllers once; each step only writes what actually changes.

        A write to one workload only concerns that workload's controller chain (workload →
        ReplicaSets → pods); a write to another namespaced object, the controllers of its
        namespace; nodes and the like, everything (`namespace=None`). Scoping keeps a write's cost
        independent of the cluster's size.
        """
        self._sync_node_taints()
        self._collect_garbage()
        kind = workload["kind"] if workload is not None else None
        current = self.find(kind, _namespace(workload), _name(workload)) if workload is not None and kind else None

        def scoped(of_kind: str) -> list[JSON]:
            if workload is None:
                return self.all(of_kind, namespace)
            return [current] if current is not None and kind == of_kind else []

        deployments = scoped("Deployment")
        for deployment in deployments:
            self._reconcile_deployment(deployment)
        if workload is None:
            replica_sets = self.all("ReplicaSet", namespace)
        else:
            replica_sets = [rs for d in deployments for rs in self._owned("ReplicaSet", d)]
        for replica_set in replica_sets:
            self._reconcile_replica_set(replica_set)
        for stateful_set in scoped("StatefulSet"):
            self._reconcile_stateful_set(stateful_set)
        for daemon_set in scoped("DaemonSet"):
            self._reconcile_daemon_set(daemon_set)
        self._schedule_pending()
        self._update_statuses(namespace, workload)

    def _sync_node_taints(self) -> None:
        for node in self.all("Node"):
            updated = _clone(node)
            spec = _spec(updated)
            taints = [t for t in spec.get("taints") or [] if t.get("key") != UNSCHEDULABLE_TAINT]
            if spec.get("unschedulable"):
                existing = next((t for t in spec.get("taints") or [] if t.get("key") == UNSCHEDULABLE_TAINT), None)
                taints.append(
                    existing or {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": _ts(_now())}
                )
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            self._save(updated)

    def _collect_garbage(self) -> None:
        """Delete dependents whose controlling owner is gone, as the garbage collector does."""
        for kind in ("ReplicaSet", "Pod"):
            for obj in self.all(kind):
                ref = _controller_ref(obj)
                if ref is None:
                    continue
                owner = self.find(str(ref.get("kind")), _namespace(obj), str(ref.get("name")))
                if owner is None or owner["metadata"]["uid"] != ref.get("uid"):
                    self._remove(kind, _namespace(obj), _name(obj))

    def _owned(self, kind: str, owner: JSON) -> list[JSON]:
        uid = owner["metadata"]["uid"]
        namespace = _namespace(owner)
        found = [o for o in self.objects.by_owner.get((kind, uid), {}).values() if _namespace(o) == namespace]
        return sorted(found, key=lambda o: (_namespace(o), _name(o)))

    @staticmethod
    def _owner_ref(owner: JSON) -> JSON:
        return {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def _reconcile_deployment(self, deployment: JSON) -> None:
        namespace = _namespace(deployment)
        spec = deployment["spec"]
        replicas = int(spec.get("replicas", 1))
        template = _strip_hash(spec.get("template"))
        owned = self._owned("ReplicaSet", deployment)
        wanted = _normal(template)
        current = next((rs for rs in owned if _normal(_strip_hash(rs["spec"].get("template"))) == wanted), None)
        max_revision = max((_revision(rs) for rs in owned), default=0)
        surge = _int_or_percent(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", 0),
            replicas,
            round_up=True,
        )
        if current is None:
            current = self._new_replica_set(deployment, template, max_revision + 1)
        elif _revision(current) < max_revision:
            # Rolling back to an old template re-uses its ReplicaSet under a new revision number.
            revived = _clone(current)
            annotations = _annotations(revived)
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
            annotations[REVISION_HISTORY] = ",".join([*history, str(_revision(current))])
            annotations[REVISION] = str(max_revision + 1)
            current = self._save(revived)
        revision = str(_revision(current))
        if (deployment["metadata"].get("annotations") or {}).get(REVISION) != revision:
            updated = _clone(deployment)
            _annotations(updated)[REVISION] = revision
            self._save(updated)
        for rs in self._owned("ReplicaSet", deployment):
            want = replicas if _name(rs) == _name(current) else 0
            updated = _clone(rs)
            _spec(updated)["replicas"] = want
            if want:
                _annotations(updated)[DESIRED_REPLICAS] = str(replicas)
                _annotations(updated)[MAX_REPLICAS] = str(replicas + surge)
            self._save(updated)
        limit = int(spec.get("revisionHistoryLimit", 10))
        old = sorted(
            (rs for rs in self._owned("ReplicaSet", deployment) if _name(rs) != _name(current)),
            key=_revision,
        )
        for rs in old[: max(0, len(old) - limit)]:
            self._remove("ReplicaSet", namespace, _name(rs))

    def _new_replica_set(self, deployment: JSON, template: JSON, revision: int) -> JSON:
        pod_hash = _template_hash(template)
        template = _clone(template)
        template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = pod_hash
        selector = _clone(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = pod_hash
        annotations = {
            k: v for k, v in (deployment["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED_TO_RS
        }
        annotations[REVISION] = str(revision)
        replica_set: JSON = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{_name(deployment)}-{pod_hash}",
                "namespace": _namespace(deployment),
                "uid": self._uid(),
                "generation": 1,
                "creationTimestamp": _ts(_now()),
                "labels": dict(template["metadata"]["labels"]),
                "annotations": annotations,
                "ownerReferences": [self._owner_ref(deployment)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
            "status": {"replicas": 0, "observedGeneration": 1},
        }
        return self._store(replica_set)

    def _reconcile_replica_set(self, replica_set: JSON) -> None:
        pods = self._owned("Pod", replica_set)
        wanted = int(replica_set["spec"].get("replicas", 1))
        template = replica_set["spec"].get("template") or {}
        for _ in range(wanted - len(pods)):
            self._create_pod(replica_set, template, f"{_name(replica_set)}-{self._suffix()}")
        if len(pods) > wanted:
            # The ReplicaSet controller deletes unscheduled pods first, then the newest.
            victims = sorted(
                pods, key=lambda p: (bool(_spec(p).get("nodeName")), -int(p["metadata"]["resourceVersion"]))
            )
            for pod in victims[: len(pods) - wanted]:
                self._remove("Pod", _namespace(pod), _name(pod))

    def _reconcile_stateful_set(self, stateful_set: JSON) -> None:
        namespace, name = _namespace(stateful_set), _name(stateful_set)
        spec = stateful_set["spec"]
        template = _strip_hash(spec.get("template"), CONTROLLER_REVISION_HASH)
        revision = f"{name}-{_template_hash(template)}"
        replicas = int(spec.get("replicas", 1))
        pods = {_name(p): p for p in self._owned("Pod", stateful_set)}
        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            pod = pods.pop(pod_name, None)
            if pod is not None and _labels(pod).get(CONTROLLER_REVISION_HASH) == revision:
                continue
            if pod is not None:
                self._remove("Pod", namespace, pod_name)
            claims = self._ensure_claims(stateful_set, ordinal)
            pod_template = _clone(template)
            labels = pod_template.setdefault("metadata", {}).setdefault("labels", {})
            labels.update(
                {
                    CONTROLLER_REVISION_HASH: revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(ordinal),
                }
            )
            pod_spec = pod_template.setdefault("spec", {})
            pod_spec["hostname"] = pod_name
            if spec.get("serviceName"):
                pod_spec["subdomain"] = spec["serviceName"]
            volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims]
            volumes.extend({"name": t, "persistentVolumeClaim": {"claimName": c}} for t, c in claims.items())
            pod_spec["volumes"] = volumes
            self._create_pod(stateful_set, pod_template, pod_name)
        for pod in pods.values():
            self._remove("Pod", namespace, _name(pod))

    def _ensure_claims(self, stateful_set: JSON, ordinal: int) -> dict[str, str]:
        """PersistentVolumeClaims from volumeClaimTemplates, kept when pods go (whenScaled: Retain)."""
        claims: dict[str, str] = {}
        namespace = _namespace(stateful_set)
        for template in stateful_set["spec"].get("volumeClaimTemplates") or []:
            template_name = template["metadata"]["name"]
            claim_name = f"{template_name}-{_name(stateful_set)}-{ordinal}"
            claims[template_name] = claim_name
            if self.find("PersistentVolumeClaim", namespace, claim_name) is not None:
                continue
            claim_spec = _clone(template.get("spec") or {})
            claim_spec.setdefault("storageClassName", "standard")
            claim_spec.setdefault("volumeMode", "Filesystem")
            volume_name = f"pvc-{self._uid()}"
            claim_spec["volumeName"] = volume_name
            storage = ((claim_spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            self._store(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": claim_name,
                        "namespace": namespace,
                        "uid": self._uid(),
                        "creationTimestamp": _ts(_now()),
                        "labels": dict((stateful_set["spec"].get("selector") or {}).get("matchLabels") or {}),
                        "annotations": {
                            "pv.kubernetes.io/bind-completed": "yes",
                            "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path",
                        },
                        "finalizers": ["kubernetes.io/pvc-protection"],
                    },
                    "spec": claim_spec,
                    "status": {
                        "phase": "Bound",
                        "accessModes": list(claim_spec.get("accessModes") or ["ReadWriteOnce"]),
                        "capacity": {"storage": storage},
                    },
                }
            )
        return claims

    def _reconcile_daemon_set(self, daemon_set: JSON) -> None:
        namespace = _namespace(daemon_set)
        template = _strip_hash(daemon_set["spec"].get("template"), CONTROLLER_REVISION_HASH)
        revision = _template_hash(template)[:10]
        by_node: dict[str, JSON] = {}
        for pod in self._owned("Pod", daemon_set):
            node = str(_spec(pod).get("nodeName", ""))
            if node in by_node or _labels(pod).get(CONTROLLER_REVISION_HASH) != revision:
                self._remove("Pod", namespace, _name(pod))
            else:
                by_node[node] = pod
        nodes = [_name(n) for n in self.all("Node")]
        for node in nodes:
            if node in by_node:
                continue
            pod_template = _clone(template)
            labels = pod_template.setdefault("metadata", {}).setdefault("labels", {})
            labels[CONTROLLER_REVISION_HASH] = revision
            labels["pod-template-generation"] = str(daemon_set["metadata"].get("generation", 1))
            # DaemonSet pods tolerate cordoned nodes: they land on every node regardless.
            self._create_pod(daemon_set, pod_template, f"{_name(daemon_set)}-{self._suffix()}", node=node)
        for node, pod in by_node.items():
            if node not in nodes:
                self._remove("Pod", namespace, _name(pod))

    def _schedulable_node(self) -> str | None:
        candidates = [n for n in self.all("Node") if not _spec(n).get("unschedulable")]
        if not candidates:
            return None
        load: dict[str, int] = {_name(n): 0 for n in candidates}
        for pod in self.all("Pod"):
            node = _spec(pod).get("nodeName")
            if node in load:
                load[node] += 1
        return min(load, key=lambda n: (load[n], n))

    def _create_pod(self, owner: JSON, template: JSON, name: str, *, node: str | None = None) -> JSON:
        template = _clone(template)
        template_meta = template.get("metadata") or {}
        pod: JSON = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": _namespace(owner),
                "uid": self._uid(),
                "creationTimestamp": _ts(_now()),
                "labels": dict(template_meta.get("labels") or {}),
                "ownerReferences": [self._owner_ref(owner)],
            },
            "spec": template.get("spec") or {},
        }
        if owner["kind"] != "StatefulSet":
            pod["metadata"]["generateName"] = f"{_name(owner)}-"
        if template_meta.get("annotations"):
            pod["metadata"]["annotations"] = dict(template_meta["annotations"])
        if node is not None:
            pod["spec"]["nodeName"] = node
        self._complete_pod(pod)
        return self._store(pod)

    def _complete_pod(self, pod: JSON) -> None:
        """What the scheduler and the kubelet add: a node, defaults, and a Running status."""
        spec = _spec(pod)
        _default_pod_spec(spec)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        spec.setdefault(
            "tolerations",
            [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
        )
        if not spec.get("nodeName"):
            node = self._schedulable_node()
            if node is not None:
                spec["nodeName"] = node
        if "status" not in pod or not spec.get("nodeName") or (pod.get("status") or {}).get("phase") == "Pending":
            pod["status"] = self._pod_status(pod)

    def _pod_status(self, pod: JSON) -> JSON:
        spec = _spec(pod)
        now = _ts(_now())
        node_name = spec.get("nodeName")
        if not node_name:
            return {
                "phase": "Pending",
                "qosClass": _qos(spec),
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: node(s) were unschedulable.",
                        "lastTransitionTime": now,
                    }
                ],
            }
        node = self.find("Node", None, str(node_name))
        host_ip = "10.0.0.1"
        if node is not None:
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == "InternalIP":
                    host_ip = address["address"]
        self._ip_counter += 1
        node_index = int(str(node_name).rsplit("-", 1)[-1]) if str(node_name)[-1:].isdigit() else 0
        pod_ip = f"10.244.{node_index}.{self._ip_counter % 250 + 2}"
        statuses = []
        for container in spec.get("containers") or []:
            image = str(container.get("image", ""))
            digest = hashlib.sha256(image.encode()).hexdigest()
            container_id = hashlib.sha256(f"{image}/{self._ip_counter}".encode()).hexdigest()
            statuses.append(
                {
                    "name": container.get("name"),
                    "image": image,
                    "imageID": f"{image.split(':', 1)[0]}@sha256:{digest}",
                    "containerID": f"containerd://{container_id}",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                    "lastState": {},
                }
            )
        conditions = [
            {"type": kind, "status": "True", "lastTransitionTime": now}
            for kind in (
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled",
            )
        ]
        return {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": now,
            "containerStatuses": statuses,
            "qosClass": _qos(spec),
        }

    def _schedule_pending(self) -> None:
        """Pods left Pending because every node was cordoned get a node once one is free."""
        for pod in self.all("Pod"):
            if _spec(pod).get("nodeName") or _meta(pod).get("deletionTimestamp"):
                continue
            node = self._schedulable_node()
            if node is None:
                return
            updated = _clone(pod)
            _spec(updated)["nodeName"] = node
            updated["status"] = self._pod_status(updated)
            self._save(updated)

    def _update_statuses(self, namespace: str | None = None, workload: JSON | None = None) -> None:
        if workload is not None:
            current = self.find(workload["kind"], _namespace(workload), _name(workload))
            if current is None:
                return
            if current["kind"] == "Deployment":
                for replica_set in self._owned("ReplicaSet", current):
                    self._replica_set_status(replica_set)
                self._deployment_status(current)
            elif current["kind"] == "StatefulSet":
                self._stateful_set_status(current)
            elif current["kind"] == "DaemonSet":
                self._daemon_set_status(current)
            return
        for replica_set in self.all("ReplicaSet", namespace):
            self._replica_set_status(replica_set)
        for deployment in self.all("Deployment", namespace):
            self._deployment_status(deployment)
        for stateful_set in self.all("StatefulSet", namespace):
            self._stateful_set_status(stateful_set)
        for daemon_set in self.all("DaemonSet", namespace):
            self._daemon_set_status(daemon_set)

    def _replica_set_status(self, replica_set: JSON) -> None:
        pods = self._owned("Pod", replica_set)
        updated = _clone(replica_set)
        status = updated.setdefault("status", {})
        status["replicas"] = len(pods)
        ready = sum(1 for p in pods if _is_ready(p))
        _set_optional(status, "fullyLabeledReplicas", len(pods))
        _set_optional(status, "readyReplicas", ready)
        _set_optional(status, "availableReplicas", ready)
        status["observedGeneration"] = updated["metadata"].get("generation", 1)
        self._save(updated)

    def _stateful_set_status(self, stateful_set: JSON) -> None:
        pods = self._owned("Pod", stateful_set)
        template = _strip_hash(stateful_set["spec"].get("template"), CONTROLLER_REVISION_HASH)
        revision = f"{_name(stateful_set)}-{_template_hash(template)}"
        ready = sum(1 for p in pods if _is_ready(p))
        updated = _clone(stateful_set)
        status: JSON = {
            "replicas": len(pods),
            "observedGeneration": updated["metadata"].get("generation", 1),
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        _set_optional(status, "readyReplicas", ready)
        _set_optional(status, "availableReplicas", ready)
        _set_optional(status, "currentReplicas", len(pods))
        _set_optional(status, "updatedReplicas", len(pods))
        updated["status"] = status
        self._save(updated)

    def _daemon_set_status(self, daemon_set: JSON) -> None:
        node_count = len(self.all("Node"))
        pods = self._owned("Pod", daemon_set)
        ready = sum(1 for p in pods if _is_ready(p))
        updated = _clone(daemon_set)
        status = {
            "currentNumberScheduled": len(pods),
            "desiredNumberScheduled": node_count,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "observedGeneration": updated["metadata"].get("generation", 1),
        }
        _set_optional(status, "numberAvailable", ready)
        _set_optional(status, "updatedNumberScheduled", len(pods))
        _set_optional(status, "numberUnavailable", node_count - ready)
        updated["status"] = status
        self._save(updated)

    def _deployment_status(self, deployment: JSON) -> None:
        spec = deployment["spec"]
        replicas = int(spec.get("replicas", 1))
        owned = self._owned("ReplicaSet", deployment)
        newest = max(owned, key=_revision, default=None)
        pods = [p for rs in owned for p in self._owned("Pod", rs)]
        new_pods = self._owned("Pod", newest) if newest is not None else []
        ready = sum(1 for p in pods if _is_ready(p))
        max_unavailable = _int_or_percent(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", 0),
            replicas,
            round_up=False,
        )
        updated = _clone(deployment)
        old_status = deployment.get("status") or {}
        status: JSON = {"observedGeneration": updated["metadata"].get("generation", 1)}
        _set_optional(status, "replicas", len(pods))
        _set_optional(status, "updatedReplicas", len(new_pods))
        _set_optional(status, "readyReplicas", ready)
        _set_optional(status, "availableReplicas", ready)
        _set_optional(status, "unavailableReplicas", max(0, replicas - ready))
        available = ready >= replicas - max_unavailable
        rs_name = _name(newest) if newest is not None else _name(deployment)
        wanted = [
            (
                "Available",
                "True" if available else "False",
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            ),
            (
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            ),
        ]
        previous = {c.get("type"): c for c in old_status.get("conditions") or []}
        now = _ts(_now())
        conditions = []
        for kind, value, reason, message in wanted:
            before = previous.get(kind) or {}
            same = before.get("status") == value and before.get("reason") == reason and before.get("message") == message
            conditions.append(
                {
                    "type": kind,
                    "status": value,
                    "reason": reason,
                    "message": message,
                    "lastUpdateTime": before.get("lastUpdateTime", now) if same else now,
                    "lastTransitionTime": before.get("lastTransitionTime", now)
                    if before.get("status") == value
                    else now,
                }
            )
        status["conditions"] = conditions
        updated["status"] = status
        self._save(updated)

    # ---- seed

    def seed(self) -> None:
        """Load the seeded cluster; built once per process, then copied (tests start many sandboxes)."""
        with _SEED_LOCK:
            cached = _SEED_CACHE.get("cluster")
            if cached is None:
                self._build_seed()
                cached = (
                    json.dumps(list(self.objects.values())),
                    self.resource_version,
                    self.rng.getstate(),
                    self._ip_counter,
                )
                _SEED_CACHE["cluster"] = cached
                return
        objects, self.resource_version, rng_state, self._ip_counter = cached
        self.rng.setstate(rng_state)
        for obj in json.loads(objects):
            self.objects[(obj["kind"], _namespace(obj), _name(obj))] = obj

    def _build_seed(self) -> None:
        for namespace in ("default", "kube-system", "kube-public", "monitoring", "prod", "staging"):
            self.put(
                {
                    "kind": "Namespace",
                    "metadata": {"name": namespace, "labels": {"kubernetes.io/metadata.name": namespace}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
            )
        for index in (1, 2, 3):
            self.put(_node(index, self._uid()))
        self.put(_service("default", "kubernetes", None, [("https", 443, 6443)], cluster_ip="10.96.0.1"))

        # prod/api with a real rollout history: 1.4.0 → 1.4.1 → 1.4.2.
        for image in ("ghcr.io/acme/api:1.4.0", "ghcr.io/acme/api:1.4.1", "ghcr.io/acme/api:1.4.2"):
            self.put(
                _deployment(
                    "prod",
                    "api",
                    3,
                    _container("api", image, 8080, cpu="250m", memory="256Mi", env={"LOG_LEVEL": "info"}),
                    labels={"app": "api", "tier": "backend"},
                    change_cause=f"deploy {image.rsplit(':', 1)[1]}",
                )
            )
        self.put(
            _deployment(
                "prod",
                "web",
                2,
                _container("web", "ghcr.io/acme/web:2.3.1", 8080),
                labels={"app": "web", "tier": "frontend"},
            )
        )
        self.put(
            _deployment(
                "prod",
                "worker",
                1,
                _container("worker", "ghcr.io/acme/worker:1.4.2", None, cpu="500m", memory="512Mi"),
                labels={"app": "worker", "tier": "backend"},
            )
        )
        self.put(_postgres())
        self.put(_service("prod", "api", {"app": "api"}, [("http", 80, 8080)], cluster_ip="10.96.12.40"))
        self.put(_service("prod", "web", {"app": "web"}, [("http", 80, 8080)], cluster_ip="10.96.12.41"))
        self.put(_service("prod", "postgres", {"app": "postgres"}, [("postgres", 5432, 5432)], cluster_ip="None"))

        self.put(
            _deployment(
                "staging",
                "web",
                2,
                _container("web", "ghcr.io/acme/web:2.4.0-rc.1", 8080),
                labels={"app": "web", "tier": "frontend"},
            )
        )
        self.put(
            _deployment(
                "staging",
                "api",
                1,
                _container("api", "ghcr.io/acme/api:1.5.0-rc.1", 8080, cpu="250m", memory="256Mi"),
                labels={"app": "api", "tier": "backend"},
            )
        )
        self.put(_service("staging", "web", {"app": "web"}, [("http", 80, 8080)], cluster_ip="10.96.20.10"))
        self.put(_service("staging", "api", {"app": "api"}, [("http", 80, 8080)], cluster_ip="10.96.20.11"))

        self.put(
            _daemon_set(
                "monitoring",
                "node-exporter",
                {"app.kubernetes.io/name": "node-exporter"},
                _container("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2", 9100, cpu="50m", memory="64Mi"),
            )
        )
        self.put(
            _deployment(
                "kube-system",
                "coredns",
                2,
                _container("coredns", "registry.k8s.io/coredns/coredns:v1.11.3", 53, cpu="100m", memory="70Mi"),
                labels={"k8s-app": "kube-dns"},
            )
        )
        self.put(
            _service(
                "kube-system",
                "kube-dns",
                {"k8s-app": "kube-dns"},
                [("dns-tcp", 53, 53)],
                cluster_ip="10.96.0.10",
            )
        )
        self.put(
            _daemon_set(
                "kube-system",
                "kube-proxy",
                {"k8s-app": "kube-proxy"},
                _container("kube-proxy", "registry.k8s.io/kube-proxy:v1.31.0", None, cpu="50m", memory="64Mi"),
            )
        )


_SEED_LOCK = threading.Lock()
_SEED_CACHE: dict[str, tuple[str, int, Any, int]] = {}


def _same_object(a: JSON, b: JSON) -> bool:
    def comparable(obj: JSON) -> Any:
        normal = _normal(obj)  # a fresh structure, so trimming it leaves `obj` alone
        (normal.get("metadata") or {}).pop("resourceVersion", None)
        return normal

    return bool(comparable(a) == comparable(b))


def _qos(spec: JSON) -> str:
    for container in spec.get("containers") or []:
        if (container.get("resources") or {}).get("requests") or (container.get("resources") or {}).get("limits"):
            return "Burstable"
    return "BestEffort"


def _default_pod_spec(spec: JSON) -> None:
    """The API server's defaulting for a pod spec, so stored templates compare like real ones."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in spec.get("containers") or []:
        if not isinstance(container, dict):
            continue
        image = str(container.get("image", ""))
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


# --------------------------------------------------------------------------------------------
# Seed objects


def _container(
    name: str,
    image: str,
    port: int | None,
    *,
    cpu: str = "100m",
    memory: str = "128Mi",
    env: Mapping[str, str] | None = None,
) -> JSON:
    container: JSON = {
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
    }
    if port is not None:
        container["ports"] = [{"name": "http" if port not in (53, 5432, 9100) else name[:15], "containerPort": port}]
        container["readinessProbe"] = {
            "tcpSocket": {"port": port},
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        }
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return container


def _deployment(
    namespace: str,
    name: str,
    replicas: int,
    container: JSON,
    *,
    labels: Mapping[str, str],
    change_cause: str | None = None,
) -> JSON:
    selector = {"app": labels["app"]} if "app" in labels else dict(labels)
    annotations = {"kubernetes.io/change-cause": change_cause} if change_cause else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": annotations,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container]}},
        },
    }


def _postgres() -> JSON:
    container = _container(
        "postgres",
        "postgres:16.4",
        5432,
        cpu="500m",
        memory="1Gi",
        env={"PGDATA": "/var/lib/postgresql/data/pgdata"},
    )
    container["volumeMounts"] = [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]
    labels = {"app": "postgres", "tier": "data"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "postgres", "namespace": "prod", "labels": labels},
        "spec": {
            "replicas": 1,
            "serviceName": "postgres",
            "selector": {"matchLabels": {"app": "postgres"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "10Gi"}},
                    },
                }
            ],
        },
    }


def _daemon_set(namespace: str, name: str, labels: Mapping[str, str], container: JSON) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [container],
                    "hostNetwork": True,
                    "tolerations": [{"operator": "Exists"}],
                },
            },
        },
    }


def _service(
    namespace: str,
    name: str,
    selector: Mapping[str, str] | None,
    ports: Iterable[tuple[str, int, int]],
    *,
    cluster_ip: str,
) -> JSON:
    spec: JSON = {
        "type": "ClusterIP",
        "clusterIP": cluster_ip,
        "clusterIPs": [cluster_ip],
        "ports": [
            {"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"}
            for port_name, port, target in ports
        ],
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "internalTrafficPolicy": "Cluster",
    }
    if selector:
        spec["selector"] = dict(selector)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(selector or {"component": "apiserver"}),
        },
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def _node(index: int, boot_id: str) -> JSON:
    name = f"node-{index}"
    cpu, memory = ("8", "32867184Ki") if index == 3 else ("4", "16393892Ki")
    heartbeat = _ts(_now())
    since = _ts(_now() - timedelta(days=41))

    def condition(kind: str, value: str, reason: str, message: str) -> JSON:
        return {
            "type": kind,
            "status": value,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": since,
        }

    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": f"zone-{'abc'[index - 1]}",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
        "status": {
            "capacity": {
                "cpu": cpu,
                "memory": memory,
                "pods": "110",
                "ephemeral-storage": "102687672Ki",
                "hugepages-2Mi": "0",
            },
            "allocatable": {
                "cpu": cpu,
                "memory": memory,
                "pods": "110",
                "ephemeral-storage": "94636136878",
                "hugepages-2Mi": "0",
            },
            "conditions": [
                condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.0.{10 + index}"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hashlib.md5(name.encode(), usedforsecurity=False).hexdigest(),
                "systemUUID": str(uuid.UUID(hashlib.md5(name.encode(), usedforsecurity=False).hexdigest())),
                "bootID": boot_id,
                "kernelVersion": "6.8.0-45-generic",
                "osImage": "Ubuntu 24.04.1 LTS",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": "v1.31.0",
                "kubeProxyVersion": "v1.31.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


# --------------------------------------------------------------------------------------------
# The loopback server, its thread, and the test hooks


class RecordedRequest(NamedTuple):
    method: str
    path: str
    query: dict[str, str]


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None
    reason: str
    times: int | None
    delay: float
    message: str | None

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self.pattern.search(path) is not None


@dataclass
class _RandomFaults:
    fraction: float
    rng: random.Random
    statuses: tuple[int, ...]
    timeout_delay: float | None


@dataclass
class _Hook:
    method: str
    pattern: re.Pattern[str]
    action: Callable[[SandboxCluster], object]
    times: int | None
    fired: int = field(default=0)


class SandboxCluster:
    """A loopback Kubernetes API server with a seeded cluster, test hooks and fault injection.

    `start()` serves it from a background thread and returns the base URL; `stop()` (or the
    context manager) shuts it down. Every request needs `Authorization: Bearer <token>`.
    """

    def __init__(
        self,
        seed: bool = True,
        token: str = "sandbox-token",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._token = token
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._server = _ApiServer()
        # Bounded, so a long `signoff console` session does not grow without end.
        self._requests: deque[RecordedRequest] = deque(maxlen=10_000)
        self._faults: list[_Fault] = []
        self._random: _RandomFaults | None = None
        self._hooks: list[_Hook] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._url: str | None = None
        self._startup_error: BaseException | None = None
        if seed:
            self._server.seed()

    # ---- lifetime

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the sandbox is not started; call start() first")
        return self._url

    @property
    def token(self) -> str:
        return self._token

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> str:
        if self._url is not None:
            return self._url
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="signoff-sandbox", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("the sandbox API server did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(
                f"the sandbox API server could not start: {self._startup_error}"
            ) from self._startup_error
        log.info("sandbox.started", url=self._url)
        return self.url

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._loop = self._thread = None
            self._url = None
        log.info("sandbox.stopped")

    def __enter__(self) -> SandboxCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._open())
        except BaseException as error:  # reported to start(), which re-raises in the caller's thread
            self._startup_error = error
            ready.set()
            loop.close()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _open(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Delayed faults end at once on stop, so a short shutdown timeout never cuts a real answer.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self._host, self._port))
        sock.setblocking(False)
        site = web.SockSite(self._runner, sock)
        await site.start()
        host, port = sock.getsockname()[:2]
        self._server.address = f"{host}:{port}"
        self._url = f"http://{host}:{port}"

    async def _shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        method, path = request.method, request.path
        query = dict(request.query)
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query))
        if request.headers.get("Authorization") != f"Bearer {self._token}":
            return _respond(401, _status_object(401, "Unauthorized", "Unauthorized"))
        if path == "/_sandbox/requests":
            # Not Kubernetes: lets a harness in another process see which calls reached the "cluster".
            with self._lock:
                log_rows = [{"method": r.method, "path": r.path, "query": r.query} for r in self._requests]
            return _respond(200, {"requests": log_rows})
        if path == "/_sandbox/faults" and method == "POST":
            # Random faults for a harness in another process (e.g. `?fraction=0.3&seed=1&statuses=500,409`).
            statuses = tuple(int(x) for x in query.get("statuses", "500").split(","))
            delay = float(query["timeout_delay"]) if "timeout_delay" in query else None
            self.inject_random(float(query.get("fraction", "0")), int(query.get("seed", "0")), statuses, delay)
            return _respond(200, {"faults": "on"})
        fault = self._take_fault(method, path)
        if fault is not None:
            status, reason, delay, message = fault
            if delay > 0:
                await self._sleep(delay)
                if self._stopping is not None and self._stopping.is_set():
                    # Shutting down: a held-back request must not write into a stopping server.
                    return _respond(503, _status_object(503, "ServiceUnavailable", "the sandbox is stopping"))
            if status is not None:
                log.info("sandbox.fault_injected", method=method, path=path, status=status, delay=delay)
                details: JSON = {"retryAfterSeconds": 1} if status in (429, 503) else {}
                return _respond(status, _status_object(status, reason, message, details))
        body = await request.read()
        # aiohttp reports a missing Content-Type as octet-stream; the API server reads it as JSON.
        content_type = request.content_type if "Content-Type" in request.headers else ""
        with self._lock:
            self._run_hooks(method, path)
            try:
                code, payload = self._server.handle(method, path, query, content_type, body)
            except Exception as error:  # a sandbox bug must surface as a 500 Status, not a hang
                log.exception("sandbox.internal_error", method=method, path=path)
                code, payload = 500, _status_object(500, "InternalError", f"sandbox error: {error!r}")
            text = json.dumps(payload)
        log.debug("sandbox.request", method=method, path=path, status=code)
        return web.Response(status=code, text=text, content_type="application/json")

    async def _sleep(self, delay: float) -> None:
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    def _take_fault(self, method: str, path: str) -> tuple[int | None, str, float, str] | None:
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, path):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                message = fault.message or f"injected fault: {fault.reason} on {method} {path}"
                return fault.status, fault.reason, fault.delay, message
            chaos = self._random
            if chaos is None or chaos.rng.random() >= chaos.fraction:
                return None
            outcomes: list[int | None] = list(chaos.statuses)
            if chaos.timeout_delay is not None:
                outcomes.append(None)
            status = chaos.rng.choice(outcomes)
            if status is None:
                # A slow answer that still happens: the write may land after the client gave up.
                return None, "", float(chaos.timeout_delay or 0.0), ""
            reason = _REASONS.get(status, "InternalError")
            return status, reason, 0.0, f"injected fault: {reason} on {method} {path}"

    def _run_hooks(self, method: str, path: str) -> None:
        for hook in list(self._hooks):
            if hook.method not in ("*", method) or not hook.pattern.search(path):
                continue
            hook.fired += 1
            if hook.times is not None and hook.fired >= hook.times:
                self._hooks.remove(hook)
            hook.action(self)

    # ---- test hooks

    def get(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        """A deep copy of the stored object, or None."""
        resource = _resource_for(kind)
        with self._lock:
            obj = self._server.find(resource.kind, namespace if resource.namespaced else None, name)
            return _clone(obj) if obj is not None else None

    def objects(self, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[JSON]:
        """Deep copies of the stored objects of a kind (all namespaces when namespace is None)."""
        resource = _resource_for(kind)
        requirements = _parse_label_selector(label_selector) if label_selector else []
        with self._lock:
            found = self._server.all(resource.kind, namespace)
            return [_clone(o) for o in found if all(r.matches(_labels(o)) for r in requirements)]

    def put(self, obj: JSON) -> JSON:
        """Add or replace an object as a write would (new resourceVersion), then run the controllers."""
        with self._lock:
            return self._server.put(obj)

    def add_deployments(self, namespace: str, count: int, *, prefix: str = "app", replicas: int = 1) -> list[str]:
        """A namespace of small one-container deployments: one target per request for harnesses that
        need to attribute every write to the request that made it."""
        names = [f"{prefix}-{index:04d}" for index in range(count)]
        with self._lock:
            if self._server.find("Namespace", None, namespace) is None:
                self._server.put({"kind": "Namespace", "metadata": {"name": namespace},
                                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
            for name in names:
                # One controller pass for the lot: reconciling after each put is quadratic.
                self._server.put(_deployment(namespace, name, replicas,
                                             _container(name, f"ghcr.io/acme/{prefix}:1.0.0", 8080),
                                             labels={"app": name}), reconcile=False)
            self._server.reconcile()
        return names

    def delete_object(self, kind: str, namespace: str | None, name: str) -> bool:
        """Remove an object outright (dependents are garbage-collected); False if it was absent."""
        with self._lock:
            return self._server.delete_object(kind, namespace, name)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._server.resource_version

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int | None = 500,
        reason: str = "InternalError",
        *,
        times: int | None = 1,
        delay: float = 0.0,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests (None: all) with a Status error.

        `delay` holds the answer back first (beyond the client's timeout it is a timeout);
        `status=None` with a delay serves the request normally, only late.
        """
        fault = _Fault(method.upper(), re.compile(path_regex), status, reason, times, delay, message)
        with self._lock:
            self._faults.append(fault)

    def inject_random(
        self,
        fraction: float,
        seed: int,
        statuses: Sequence[int] = (500,),
        timeout_delay: float | None = None,
    ) -> None:
        """Fail a seeded-random `fraction` of requests with one of `statuses` (or, when
        `timeout_delay` is given, sometimes answer only after that delay)."""
        with self._lock:
            self._random = _RandomFaults(fraction, random.Random(seed), tuple(statuses), timeout_delay)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._random = None
            self._hooks.clear()

    def on_request(
        self,
        method: str,
        path_regex: str,
        action: Callable[[SandboxCluster], object],
        times: int | None = 1,
    ) -> None:
        """Run `action(sandbox)` just before a matching request is processed (None: every time).

        It runs in the server thread under the store lock, so it can call `put`/`get` to
        simulate a concurrent writer racing the request.
        """
        with self._lock:
            self._hooks.append(_Hook(method.upper(), re.compile(path_regex), action, times))


def _respond(status: int, payload: JSON) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload), content_type="application/json")


def main(argv: list[str] | None = None) -> None:
    """`python -m adapters.kubernetes.sandbox`: serve the sandbox cluster until killed (for harnesses
    whose signoff processes come and go, e.g. the crash test)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="the signoff sandbox Kubernetes API server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="sandbox-token")
    parser.add_argument("--deployments", type=int, default=0, help="extra one-replica deployments in `crash`")
    args = parser.parse_args(argv)
    sandbox = SandboxCluster(token=args.token, port=args.port)
    if args.deployments:
        sandbox.add_deployments("crash", args.deployments)
    url = sandbox.start()
    print(url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()


if __name__ == "__main__":
    main()
