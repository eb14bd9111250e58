"""The neutral Card every chat adapter renders in its own way, and the texts around it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.chat.stale_texts import REQUEST_AGAIN_LABEL, waiting_text
from core.chat.text import visible
from core.domain.approvals import ApprovalRequest, RequestStatus, Signature
from core.domain.confirmation import confirm_text
from core.domain.events import TimelineEvent
from core.domain.policy import format_duration
from core.domain.verify import PodTrouble
from core.domain.verify import Progress as VerifyProgress


class ButtonAction(StrEnum):
    """What a card's button does; `core.chat.parser.BUTTONS` maps each one to a command."""

    approve = "approve"  # value: the request id
    approve_comment = "approve_comment"  # value: the request id; opens a form for the comment
    reject = "reject"    # value: the request id
    rate = "rate"        # value: `INC-7:4`
    rerequest = "rerequest"  # value: the request id (a stale request: the same action, by the clicker)
    countersign = "countersign"  # a break glass review: value the request id
    dispute = "dispute"          # value: the request id; answers how to give the reason


COMMENT_BUTTON_LABEL = "Approve with comment…"
# An ellipsis, as on any button that opens a form: this Approve asks for the target's name first.
CONFIRM_BUTTON_LABEL = "Approve…"


class CardState(StrEnum):
    """What a card shows: a request's status, or the rating prompt under a finished fix."""

    none = ""
    pending = "pending"
    approved = "approved"
    executing = "executing"
    verifying = "verifying"
    succeeded = "succeeded"
    failed = "failed"
    blocked = "blocked"
    rejected = "rejected"
    expired = "expired"
    cancelled = "cancelled"
    interrupted = "interrupted"
    stale = "stale"
    rating = "rating"

    @property
    def final(self) -> bool:
        """A request's card that will not change again (shown whole when it is updated)."""
        return self in _FINAL


_FINAL = frozenset(CardState(status.value) for status in RequestStatus if status.terminal)


STATUS_ICON = {
    RequestStatus.pending: "⏳",
    RequestStatus.approved: "✅",
    RequestStatus.executing: "⚙️",
    RequestStatus.verifying: "🔎",
    RequestStatus.succeeded: "✅",
    RequestStatus.failed: "❌",
    RequestStatus.blocked: "⛔",
    RequestStatus.rejected: "🚫",
    RequestStatus.expired: "⌛",
    RequestStatus.cancelled: "🗑️",
    RequestStatus.interrupted: "⚠️",
    RequestStatus.stale: "🔁",
}

# Colour names are semantic; each adapter maps them to its palette.
RISK_COLOUR = {"low": "green", "medium": "yellow", "high": "orange", "critical": "red"}
STATE_COLOUR = {
    RequestStatus.succeeded: "green",
    RequestStatus.failed: "red",
    RequestStatus.blocked: "red",
    RequestStatus.rejected: "grey",
    RequestStatus.expired: "grey",
    RequestStatus.cancelled: "grey",
    RequestStatus.interrupted: "orange",
    RequestStatus.stale: "grey",
}


class Button(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: ButtonAction
    label: str
    value: str
    style: Literal["primary", "danger", "secondary"] = "secondary"


class CardField(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    value: str
    inline: bool = True


class Progress(BaseModel):
    model_config = ConfigDict(frozen=True)

    current: int
    required: int

    @property
    def bar(self) -> str:
        filled = min(self.current, self.required)
        return "▰" * filled + "▱" * (self.required - filled) + f" {self.current}/{self.required}"


class Mentions(BaseModel):
    """Who a message pages, in the ids of the platform it goes to; each adapter writes its own syntax."""

    model_config = ConfigDict(frozen=True)

    users: tuple[str, ...] = ()   # Slack member ids (U…) / Discord user ids
    groups: tuple[str, ...] = ()  # Slack user group ids (S…) / Discord role ids

    def __bool__(self) -> bool:
        return bool(self.users or self.groups)


class Card(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    title: str
    text: str = ""
    colour: str = "grey"
    fields: tuple[CardField, ...] = ()
    progress: Progress | None = None
    buttons: tuple[Button, ...] = ()
    footer: str = ""
    state: CardState = CardState.none
    # Only a card's first post pages anyone; updates are rendered without mentions.
    mentions: Mentions = Mentions()


def progress_bar(current: int, required: int) -> str:
    return Progress(current=current, required=required).bar


def _change(request: ApprovalRequest) -> list[CardField]:
    """What the dry run made at request time showed (`replicas: 3 → 6`), and who else manages the target."""
    lines = request.preview.card_lines() if request.preview is not None else ()
    return [CardField(label="Change", value="\n".join(visible(line) for line in lines), inline=False)] if lines else []


def request_card(request: ApprovalRequest, now: datetime, incident_scope: str | None = None) -> Card:
    """`incident_scope`: what the linked incident covers ("47 alerts on 47 pods of deployment/api")."""
    status = request.status
    icon = STATUS_ICON[status]
    fields: list[CardField] = [*_where(request),
        CardField(label="Operation", value=f"`{request.operation.command()}`", inline=False),
        *_change(request),
        CardField(label="Requested by", value=visible(request.requested_by)),
        CardField(label="Risk", value=_risk_text(request)),
    ]
    if request.reason:
        fields.append(CardField(label="Reason", value=visible(request.reason, lines=True), inline=False))
    if request.incident_id:
        scope = f" · {incident_scope}" if incident_scope else ""
        fields.append(CardField(label="Incident", value=f"{request.incident_id}{scope}", inline=not scope))
    if request.proposal is not None:
        fields.append(CardField(label="Proposed by", value=_proposal_text(request), inline=False))
    if request.blast is not None:
        fields.append(CardField(label="Blast radius", value=request.blast.summary(), inline=False))
    signers = signers_text(request)
    fields.append(CardField(label="Signed by", value=signers, inline=False))
    if (glass := request.breakglass) is not None:  # executed on one signature (core/domain/breakglass.py)
        fields.append(CardField(label="Break glass", value=f"🚨 break glass by {glass.by}: {glass.reason}",
                                inline=False))
    fields.append(CardField(label="Who may sign", value=request.sign_rule.describe_approvers()))
    if request.escalated_at is not None and status is RequestStatus.pending:
        fields.append(CardField(
            label="Escalated",
            value=f"to {', '.join(request.escalated_to)} at {request.escalated_at:%H:%M UTC} (no quorum yet)",
        ))
    if status is RequestStatus.pending:
        left = request.expires_at - now
        fields.append(CardField(
            label="Expires", value=f"{request.expires_at:%H:%M UTC} (in {format_duration(left)})",
        ))
    rollout = rollout_text(request)
    if rollout:
        fields.append(CardField(label="Effect", value=rollout, inline=False))
    outcome = _outcome_text(request)
    if outcome:
        fields.append(CardField(label="Outcome", value=outcome, inline=False))
    buttons: tuple[Button, ...] = ()
    if status is RequestStatus.pending and request.confirm:
        # Approve… opens the form that asks for the target's name (a comment goes with `approve … confirm= comment=`).
        fields.append(CardField(label="Confirmation", value=confirm_text(request), inline=False))
        buttons = (
            Button(action=ButtonAction.approve, label=CONFIRM_BUTTON_LABEL, value=request.id, style="primary"),
            Button(action=ButtonAction.reject, label="Reject", value=request.id, style="danger"),
        )
    elif status is RequestStatus.pending:
        buttons = (
            Button(action=ButtonAction.approve, label="Approve", value=request.id, style="primary"),
            Button(action=ButtonAction.approve_comment, label=COMMENT_BUTTON_LABEL, value=request.id),
            Button(action=ButtonAction.reject, label="Reject", value=request.id, style="danger"),
        )
    elif status is RequestStatus.stale:
        buttons = (Button(action=ButtonAction.rerequest, label=REQUEST_AGAIN_LABEL, value=request.id, style="primary"),)
    colour = STATE_COLOUR.get(status, RISK_COLOUR[str(request.risk)])
    return Card(
        key=request.id,
        title=f"{icon} {request.id} · {request.operation.command()}",
        text=f"{status.value.upper()} · {request.risk} risk · needs {request.quorum} signature(s)",
        colour=colour,
        fields=tuple(fields),
        progress=Progress(current=request.signed, required=request.quorum),
        buttons=buttons,
        footer=f"signoff · {request.id} · reply `timeline` in the thread for the history",
        state=CardState(status.value),
    )


def _where(request: ApprovalRequest) -> tuple[CardField, ...]:
    """The cluster first, then the target: `eu-1 · prod/api` (`eu-1 · node-1` for a node)."""
    if request.cluster is None:
        return ()
    op = request.operation
    target = f"{op.namespace}/{op.name}" if op.namespace else op.name
    return (CardField(label="Cluster", value=visible(f"{request.cluster} · {target}")),)


def signers_text(request: ApprovalRequest) -> str:
    """`bob (slack), carol (discord)`; one signer a line, each comment beside its signer, once any has one.

    A signature the request's current rule does not admit (its risk was raised) is shown as no longer counting.
    """
    if not request.signatures:
        return "nobody yet"

    def one(s: Signature) -> str:
        aside = f", no longer counts at {request.risk} risk" if s.person in request.uncounted else ""
        return f"{visible(s.person)} ({s.via}{aside})"

    if not any(s.comment for s in request.signatures):
        return ", ".join(one(s) for s in request.signatures)
    return "\n".join(one(s) + (f": “{visible(s.comment)}”" if s.comment else "") for s in request.signatures)


def _risk_text(request: ApprovalRequest) -> str:
    if request.freeze is not None:
        return f"{request.risk} (🧊 raised one level by {request.freeze.describe()})"
    if request.stated_risk and request.stated_risk != request.risk:
        return f"{request.risk} (asked {request.stated_risk}; raised by the operation's floor)"
    return str(request.risk)


def _proposal_text(request: ApprovalRequest) -> str:
    proposal = request.proposal
    assert proposal is not None
    parts = [f"{proposal.track} track"]
    if proposal.playbook_id:
        parts.append(f"playbook {proposal.playbook_id}")
    if proposal.similarity is not None:
        parts.append(f"similarity {proposal.similarity:.2f}")
    text = ", ".join(parts)
    return f"{text}: {proposal.rationale}" if proposal.rationale else text


def rollout_text(request: ApprovalRequest) -> str:
    """`rolling out ▰▰▱ 2/3 updated · 1/3 available` while verifying; what held, or did not, after."""
    verification = request.verification
    if verification is None:
        return ""
    progress = verification.progress
    if request.status is RequestStatus.verifying:
        if progress is None:
            return "verifying: looking at the workload"
        filled, total = progress.fraction()
        bar = "▰" * filled + "▱" * (total - filled)
        verb = "rolling out" if progress.desired is not None else "waiting for"
        return f"{verb} {bar} {progress.counts()}".rstrip()
    return ""


def verified_note(seconds: float, progress: VerifyProgress) -> str:
    """How verification ended well, for the one result message: `verified in 42 s: 3/3 pods ready`."""
    return f"verified in {_span(seconds)}: {progress.achieved or progress.counts()}"


def verify_failed_note(seconds: float, reason: str, pods: Sequence[PodTrouble]) -> str:
    """`failed after 10m: ProgressDeadlineExceeded; api-7c9-x1 CrashLoopBackOff (restarted 5×), ...`"""
    text = f"failed after {_span(seconds)}: {reason}"
    if pods:
        text += "; " + ", ".join(p.text() for p in pods)
    return text


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{max(0, round(seconds))} s"
    return format_duration(timedelta(seconds=round(seconds)))


def _outcome_text(request: ApprovalRequest) -> str:
    if request.status is RequestStatus.verifying:
        return "the API server accepted the call; verifying its effect"
    if request.outcome is not None:
        return result_text(request)
    if request.status is RequestStatus.rejected:
        return f"vetoed by {request.decided_by}"
    if request.status is RequestStatus.cancelled:
        return f"cancelled by {request.decided_by}"
    if request.status is RequestStatus.expired:
        return "expired: " + (
            "the approval went stale before it ran" if request.approved_at else
            f"only {request.signed}/{request.quorum} signatures in time"
        )
    if request.status is RequestStatus.approved:
        return waiting_text(request) if request.waiting_for else "approved: executing shortly"
    if request.status is RequestStatus.executing:
        return "executing now"
    return ""


def result_text(request: ApprovalRequest) -> str:
    outcome = request.outcome
    if outcome is None:
        return f"{request.id} is {request.status}"
    icon = STATUS_ICON[outcome.status]
    seconds = outcome.duration_ms / 1000
    text = f"{icon} {request.id} {outcome.status}: {outcome.summary}"
    if outcome.duration_ms:
        text += f" ({seconds:.2f} s)"
    if outcome.reason:
        text += f". {outcome.reason}"
    if outcome.dry_run:
        text += f" Dry run: {outcome.dry_run}."
    return text


def status_text(request: ApprovalRequest, now: datetime) -> str:
    lines = [
        f"{STATUS_ICON[request.status]} {request.id} is {request.status}: `{request.operation.command()}`",
        f"risk {request.risk} · {progress_bar(request.signed, request.quorum)} · requested by "
        f"{request.requested_by}",
    ]
    if request.signatures:
        lines.append("signed by " + signers_text(request).replace("\n", "; "))
    if request.breakglass is not None:
        lines.append(f"🚨 break glass by {request.breakglass.by}: {request.breakglass.reason}")
    if request.status is RequestStatus.pending:
        lines.append(f"expires in {format_duration(request.expires_at - now)}")
    outcome = _outcome_text(request)
    if outcome:
        lines.append(outcome)
    return "\n".join(lines)


def timeline_text(subject: str, events: Sequence[TimelineEvent]) -> str:
    if not events:
        return f"No timeline events for {subject}."
    lines = [f"Timeline of {subject} ({len(events)} events, hash-chained):"]
    for event in events:
        # One line per event, whatever a reason or a comment holds: escapes are shown, never obeyed.
        actor = "" if event.actor == "signoff" else f" [{visible(event.actor)}]"
        detail = f" — {visible(event.detail)}" if event.detail else ""
        lines.append(f"#{event.seq} {event.at:%H:%M:%S} {event.type}{actor}: {visible(event.title)}{detail}")
    lines.append(f"last hash {events[-1].hash[:16]}…")
    return "\n".join(lines)


def risk_raised_text(request: ApprovalRequest, why: str) -> str:
    text = (f"⚠️ {request.id} did not run: {why}, so its risk is now {request.risk} and it needs "
            f"{request.quorum} signature(s) ({progress_bar(request.signed, request.quorum)}) from "
            f"{request.sign_rule.describe_approvers()}.")
    if request.uncounted:
        text += (f" {', '.join(request.uncounted)}'s signature no longer counts: {request.risk} risk needs "
                 f"{request.sign_rule.describe_approvers()}.")
    if request.counted:
        text += f" {', '.join(request.counted_signers)}'s signature still counts."
    return text + " Sign on the card."
