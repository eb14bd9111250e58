"""Patching: JSON merge patch (RFC 7386), strategic merge patch and JSON patch (RFC 6902)."""

from __future__ import annotations

from typing import Any

import structlog

from adapters.kubernetes.sandbox.common import _clone

log = structlog.get_logger(__name__)


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


