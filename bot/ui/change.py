"""A request's change as people read a diff: what the operation moves from what to what, from the dry run made
when it was requested (its preview), else from the facts read then (the blast radius) and what verification
recorded."""

from __future__ import annotations

from typing import NamedTuple

from core.domain.approvals import ApprovalRequest


class Line(NamedTuple):
    sign: str  # "-", "+" or " "
    text: str


def change_lines(request: ApprovalRequest) -> list[Line]:
    op = request.operation
    blast = request.blast
    where = f"{op.target_ref}" + (f" -n {op.namespace}" if op.namespace else "")
    lines = [Line(" ", f"{where}")]
    if request.preview is not None and request.preview.card_lines():
        # What the dry run at request time showed, as the card lists it: `field: old → new` as − and +.
        return lines + [line for text in request.preview.card_lines() for line in _preview(text)]
    kind = op.kind
    if kind == "scale":
        before = blast.current_replicas if blast is not None and blast.current_replicas is not None else "?"
        lines += [Line("-", f"replicas: {before}"), Line("+", f"replicas: {getattr(op, 'replicas', '?')}")]
    elif kind in ("restart", "rollback"):
        revision = _revision(request)
        after = "the previous revision" if kind == "rollback" else "a new revision, every pod replaced"
        lines += [Line("-", f"template revision: {revision if revision is not None else 'current'}"),
                  Line("+", f"template revision: {after}")]
    elif kind == "delete":
        lines += [Line("-", f"pod {op.name}: exists"), Line("+", f"pod {op.name}: deleted (its owner replaces it)")]
    elif kind == "cordon":
        lines += [Line("-", "spec.unschedulable: false"), Line("+", "spec.unschedulable: true")]
    elif kind == "uncordon":
        lines += [Line("-", "spec.unschedulable: true"), Line("+", "spec.unschedulable: false")]
    elif kind == "drain":
        lines += [Line("-", "spec.unschedulable: false"), Line("+", "spec.unschedulable: true")]
        lines += [Line("-", f"pod {pod}: evicted") for pod in (blast.evictions if blast is not None else ())]
    if blast is not None and blast.pod_names and kind != "drain":
        lines += [Line(" ", f"pod {name}") for name in blast.pod_names[:20]]
    return lines


def _preview(text: str) -> list[Line]:
    field, sep, change = text.partition(": ")
    old, arrow, new = change.partition(" → ")
    if not (sep and arrow):
        return [Line(" ", text)]
    return [Line("-", f"{field}: {old}"), Line("+", f"{field}: {new}")]


def _revision(request: ApprovalRequest) -> int | None:
    verification = request.verification
    return verification.baseline.revision if verification is not None else None
