"""The protobuf bodies kubectl sends for RBAC objects (`kubectl create rolebinding …`), read into JSON.

kubectl's typed clients write built-in kinds as `application/vnd.kubernetes.protobuf` and do not fall back to
JSON, so the sandbox reads the few messages it serves: the `k8s\\0` envelope (runtime.Unknown), ObjectMeta's
name/namespace/labels/annotations, PolicyRule, Subject and RoleRef (field numbers from k8s.io/api/rbac/v1's
generated.proto). Anything else in the message is skipped, as protobuf allows.
"""

from __future__ import annotations

from collections.abc import Iterator

from adapters.kubernetes.sandbox.common import JSON

MAGIC = b"k8s\x00"


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            yield number, value
        elif wire == 2:
            size, at = _varint(data, at)
            yield number, data[at:at + size]
            at += size
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _text(value: int | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: int | bytes) -> bytes:
    return value if isinstance(value, bytes) else b""


def _strings(data: bytes, names: dict[int, str], repeated: frozenset[int] = frozenset()) -> JSON:
    out: JSON = {}
    for number, value in _fields(data):
        if number in names and _text(value):  # proto2 writes empty strings; JSON omits them
            if number in repeated:
                out.setdefault(names[number], []).append(_text(value))
            else:
                out[names[number]] = _text(value)
    return out


def _map(data: bytes) -> tuple[str, str]:
    entry = _strings(data, {1: "k", 2: "v"})
    return str(entry.get("k", "")), str(entry.get("v", ""))


def _meta(data: bytes) -> JSON:
    meta: JSON = {}
    for number, value in _fields(data):
        if number in (1, 2, 3, 6) and _text(value):
            meta[{1: "name", 2: "generateName", 3: "namespace", 6: "resourceVersion"}[number]] = _text(value)
        elif number in (11, 12):
            key, text = _map(_bytes(value))
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = text
    return meta


_RULE = {1: "verbs", 2: "apiGroups", 3: "resources", 4: "resourceNames", 5: "nonResourceURLs"}


def decode(body: bytes) -> JSON:
    """A Role, ClusterRole, RoleBinding or ClusterRoleBinding sent as protobuf, as its JSON form."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf message (no k8s\\0 prefix)")
    type_meta: JSON = {}
    raw = b""
    for number, value in _fields(body[len(MAGIC):]):
        if number == 1:
            type_meta = _strings(_bytes(value), {1: "apiVersion", 2: "kind"})
        elif number == 2:
            raw = _bytes(value)
    obj: JSON = dict(type_meta)
    binding = str(type_meta.get("kind", "")).endswith("Binding")
    for number, value in _fields(raw):
        if number == 1:
            obj["metadata"] = _meta(_bytes(value))
        elif number == 2 and binding:
            obj.setdefault("subjects", []).append(
                _strings(_bytes(value), {1: "kind", 2: "apiGroup", 3: "name", 4: "namespace"}))
        elif number == 2:
            obj.setdefault("rules", []).append(_strings(_bytes(value), _RULE, frozenset(_RULE)))
        elif number == 3 and binding:
            obj["roleRef"] = _strings(_bytes(value), {1: "apiGroup", 2: "kind", 3: "name"})
    return obj
