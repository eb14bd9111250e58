"""The Kubernetes `Status` errors the sandbox answers with (`kubectl` and the client read their causes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from adapters.kubernetes.sandbox.common import JSON
from adapters.kubernetes.sandbox.resources import _Resource

log = structlog.get_logger(__name__)


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


