"""Client failures as the core's typed errors, each with a sentence a person can act on.

The executor hands API errors over as (status, reason, body), so only it imports the client.

- 404 → TargetMissing;
- 400/401/403/409/422 and other definite refusals → ClusterRejected with the API's reason;
- 5xx, 429, timeouts and connection failures → ClusterUnavailable, saying whether the
  change may have happened (a write whose answer never came has an unknown outcome).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from pydantic import ValidationError

from core.domain.cluster import ClusterError, ClusterRejected, ClusterUnavailable, TargetMissing
from core.domain.operations import (
    CordonOp,
    DeletePodOp,
    DrainOp,
    Operation,
    OperationType,
    RestartOp,
    RollbackOp,
    ScaleOp,
    UncordonOp,
    by_operation,
)

# What each operation is called in a sentence: "Could not <doing>", given the ` in <namespace>` part.
_DOING: dict[OperationType, Callable[[Any, str], str]] = by_operation({
    RestartOp: lambda op, where: f"restart {op.target_ref}{where}",
    ScaleOp: lambda op, where: f"scale {op.target_ref}{where} to {op.replicas} replicas",
    RollbackOp: lambda op, where: f"roll back {op.target_ref}{where}",
    DeletePodOp: lambda op, where: f"delete {op.target_ref}{where}",
    CordonOp: lambda op, _where: f"cordon {op.target_ref}",
    UncordonOp: lambda op, _where: f"uncordon {op.target_ref}",
    DrainOp: lambda op, _where: f"drain {op.target_ref}",
})


@dataclass
class Attempt:
    """What is being done, so a failure can say what it means for the cluster."""

    op: Operation | None
    dry_run: bool = False
    sent_write: bool = False
    inspecting: bool = False
    retried: int = 0  # transient failures retried so far
    stamp: dict[str, str] = field(default_factory=dict)  # signoff.dev/* annotations for what it changes

    @property
    def action(self) -> str:
        op = self.op
        if op is None:
            return "answer a version request"
        where = f" in {op.namespace}" if op.namespace else ""
        if self.inspecting:
            return f"read {op.target_ref}{where} and what depends on it"
        text = _DOING[type(op)](op, where)
        return f"dry-run {text}" if self.dry_run else text

    @property
    def outcome(self) -> str:
        if self.dry_run or not self.sent_write:
            return "Nothing was changed."
        return "Whether the change took effect is unknown: check the cluster before trying again."


def translate(error: BaseException, attempt: Attempt, *, host: str, timeout: float) -> ClusterError | None:
    """The core's error for a client failure, or None for an exception that is our own bug."""
    if isinstance(error, ClusterError):
        return error
    if isinstance(error, ValidationError):
        return ClusterUnavailable(
            f"Could not {attempt.action}: the API server's answer did not parse ({error.error_count()} "
            f"invalid fields). {attempt.outcome}",
            reason="InvalidResponse",
        )
    if isinstance(error, urllib3.exceptions.HTTPError | OSError):
        return _transport_error(error, attempt, host, timeout)
    return None


def api_error(status: int, api_reason: str | None, raw_body: str | bytes | None, attempt: Attempt) -> ClusterError:
    """An answer of the API server that is an error: its status, reason phrase and `Status` body."""
    body = _status_body(raw_body)
    reason = str(body.get("reason") or api_reason or "Unknown")
    message = str(body.get("message") or api_reason or "no message")
    op = attempt.op
    if status == 404 and op is not None:
        where = f" in namespace {op.namespace}" if op.namespace else ""
        return TargetMissing(f"{op.target_ref} not found{where}", reason="NotFound", status=404)
    if status in (0, 429) or status >= 500:
        return ClusterUnavailable(
            f"The Kubernetes API server failed to {attempt.action} ({status} {reason}): {message}. "
            f"{attempt.outcome}",
            reason=reason,
            status=status or None,
        )
    if status == 422:
        causes = [c for c in (body.get("details") or {}).get("causes") or [] if isinstance(c, dict)]
        extra = [
            f"{c.get('field')}: {c.get('message')}" for c in causes if str(c.get("message") or "") not in message
        ]
        if extra:
            message = f"{message} ({'; '.join(extra)})"
    return ClusterRejected(
        f"The Kubernetes API server refused to {attempt.action} ({status} {reason}): {message}",
        reason=reason,
        status=status,
    )


def _transport_error(error: BaseException, attempt: Attempt, host: str, timeout: float) -> ClusterUnavailable:
    cause: BaseException = error
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        cause = error.reason
    if isinstance(cause, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
        return ClusterUnavailable(
            f"Could not connect to the Kubernetes API server at {host} to {attempt.action}. Nothing was changed.",
            reason="ConnectionFailed",
        )
    if isinstance(cause, urllib3.exceptions.ConnectTimeoutError):
        return ClusterUnavailable(
            f"Connecting to the Kubernetes API server at {host} timed out after {timeout:g} s "
            f"while trying to {attempt.action}. Nothing was changed.",
            reason="Timeout",
        )
    if isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
        return ClusterUnavailable(
            f"The Kubernetes API server at {host} did not answer within {timeout:g} s "
            f"while trying to {attempt.action}. {attempt.outcome}",
            reason="Timeout",
        )
    return ClusterUnavailable(
        f"The connection to the Kubernetes API server at {host} failed while trying to "
        f"{attempt.action} ({type(cause).__name__}: {cause}). {attempt.outcome}",
        reason="ConnectionFailed",
    )


def _status_body(raw: str | bytes | None) -> dict[str, Any]:
    """The `Status` object an API server sends with an error, or {}."""
    try:
        body = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}
