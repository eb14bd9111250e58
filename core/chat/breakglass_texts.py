"""What break glass says: the card's line, the review message with its buttons, the replies and notes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core.chat.cards import Button, ButtonAction, Card
from core.domain.approvals import ApprovalRequest
from core.domain.breakglass_review import BreakGlass, BreakglassRules
from core.domain.policy import format_duration


def _record(request: ApprovalRequest) -> BreakGlass:
    if request.breakglass is None:  # pragma: no cover - only called on a break glass
        raise ValueError(f"{request.id} has no break glass")
    return request.breakglass


def headline(request: ApprovalRequest) -> str:
    record = _record(request)
    return f"🚨 break glass by {record.by}: {record.reason}"


def review_line(record: BreakGlass) -> str:
    counted = f"{len(record.countersigned_by)}/{record.review_quorum} countersigned"
    if record.countersigned_by:
        counted += f" ({', '.join(record.countersigned_by)})"
    disputes = "".join(f"; disputed by {d.by}: {d.reason}" for d in record.disputes)
    return f"review {record.status}: {counted}{disputes}; due {record.review_due:%Y-%m-%d %H:%M} UTC"


def review_card(request: ApprovalRequest, now: datetime) -> Card:
    record = _record(request)
    could = ", ".join(record.could_sign) or "nobody on the roster"
    text = (f"{request.id} runs on {record.by}'s one signature, without its quorum of {request.quorum}. "
            f"Could have signed: {could}. Reviewers ({', '.join(record.reviewers) or 'none named'}): countersign "
            f"if it was justified, or dispute it, within {format_duration(record.review_due - now)}.")
    buttons = () if record.cleared else (
        Button(action=ButtonAction.countersign, label="Countersign", value=request.id, style="primary"),
        Button(action=ButtonAction.dispute, label="Dispute", value=request.id, style="danger"),
    )
    return Card(key=request.id, title=headline(request), text=text, colour="red", buttons=buttons,
                footer=review_line(record))


def broken_text(request: ApprovalRequest) -> str:
    record = _record(request)
    return (f"🚨 You broke the glass on {request.id}: it runs now on your signature. Your review is due by "
            f"{record.review_due:%Y-%m-%d %H:%M} UTC; until it is countersigned you cannot break glass again.")


def countersigned_text(request: ApprovalRequest, by: str) -> str:
    record = _record(request)
    if record.cleared:
        return f"✅ {by} countersigned the break glass on {request.id}; the review is closed."
    return (f"✍️ {by} countersigned the break glass on {request.id} "
            f"({len(record.countersigned_by)}/{record.review_quorum}).")


def disputed_note(request: ApprovalRequest, by: str) -> str:
    record = _record(request)
    reason = next((d.reason for d in reversed(record.disputes) if d.by == by), "")
    return f"⚠️ {by} disputed the break glass by {record.by} on {request.id}: {reason}"


def dispute_form_text(request: ApprovalRequest) -> str:
    return (f"A dispute needs its reason: type `/signoff dispute {request.id} reason=\"…\"` "
            f"(console: `dispute {request.id} reason=\"…\"`).")


def overdue_note(request: ApprovalRequest) -> str:
    record = _record(request)
    return (f"⏰ The break glass by {record.by} on {request.id} is overdue for review (due "
            f"{record.review_due:%Y-%m-%d %H:%M} UTC, {len(record.countersigned_by)}/{record.review_quorum} "
            f"countersigned). Reviewers: countersign or dispute it.")


def reviews_text(requests: Sequence[ApprovalRequest], now: datetime) -> str:
    if not requests:
        return "No break glass reviews are open."
    lines = [f"{len(requests)} open break glass review(s):"]
    for request in requests:
        record = _record(request)
        lines.append(f"{request.id} `{request.operation.command()}` · by {record.by}: {record.reason} · "
                     f"{review_line(record)}")
    return "\n".join(lines)


def rules_line(rules: BreakglassRules | None) -> str:
    """`signoff check-config`'s line for `[breakglass]`."""
    if rules is None:
        return "  break glass: off (no [breakglass] section)"
    return (f"  break glass: {', '.join(rules.who)} after {format_duration(rules.after)} pending; reviewed by "
            f"{', '.join(rules.reviewers) or 'nobody (name reviewers)'} ({rules.review_quorum} countersignature(s)) "
            f"within {format_duration(rules.review_within)}")
