"""Every sentence the chat commands say to a person: the help, the replies, the refusals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core.chat.cards import progress_bar
from core.domain.approvals import ApprovalRequest, RequestStatus
from core.domain.operations import ACCEPTED_FORMS_TEXT
from core.domain.policy import format_duration

HELP_TEXT = (
    "signoff: several people sign a Kubernetes operation in chat; it then runs exactly once.\n"
    "Commands:\n"
    "  request <action> [risk=low|medium|high|critical] [incident=INC-…] [reason=\"…\"]\n"
    "  status <id> · timeline <id> · list · cancel <id> (requester only)\n"
    "  incidents · resolve <INC-id> score=<1-5> · playbooks · help\n"
    "Sign or veto with the Approve / Reject buttons on a request's card. In a request's thread,\n"
    "reply `timeline`, `status` or `help`.\n"
) + ACCEPTED_FORMS_TEXT

# Said when signoff itself failed (a bug, a database outage) or was restarting mid-action: the
# refusals cover every rule, but not signoff's own crash. Chat adapters show these.
UNFINISHED_TEXT = {
    "crashed": "⚠️ signoff hit an internal error while handling that, and logged it. Nothing changed unless "
               "the card shows it; check the card or `status <id>` before trying again.",
    "interrupted": "⚠️ signoff was restarting while handling that. Nothing changed unless the card shows it; "
                   "check the card or `status <id>` before trying again.",
}

ACTION_NEEDED_TEXT = ("`request` needs an action, like `request rollout restart deployment/api -n prod`.\n"
                      + ACCEPTED_FORMS_TEXT)
RESOLVE_USAGE = "Use `resolve INC-7 score=4`: the incident and how well the fix worked, 1 to 5."
NOT_ENABLED_TEXT = "`{command}` is not enabled here."


def requested_text(request: ApprovalRequest) -> str:
    return (f"📝 {request.id} posted for approval: `{request.operation.command()}` · risk {request.risk} · "
            f"needs {request.quorum} signature(s) from {request.sign_rule.describe_approvers()} · expires in "
            f"{format_duration(request.expires_at - request.created_at)}.")


def signed_text(request: ApprovalRequest) -> str:
    if request.status is RequestStatus.approved:
        tail = "quorum reached: approved, dry run and execution follow."
    else:
        tail = f"{request.quorum - request.signed} more signature(s) needed."
    return f"✍️ You signed {request.id} ({progress_bar(request.signed, request.quorum)}): {tail}"


def vetoed_text(request: ApprovalRequest) -> str:
    return f"🚫 You vetoed {request.id}; nothing will run."


def cancelled_text(request: ApprovalRequest) -> str:
    return f"🗑️ {request.id} cancelled; nothing will run."


def open_requests_text(requests: Sequence[ApprovalRequest], now: datetime) -> str:
    if not requests:
        return "No pending requests. `request <action>` asks for one."
    lines = [f"{len(requests)} open request(s):"]
    for request in requests:
        extra = f"expires in {format_duration(request.expires_at - now)}" \
            if request.status is RequestStatus.pending else str(request.status)
        lines.append(
            f"{request.id} `{request.operation.command()}` · {request.risk} · "
            f"{progress_bar(request.signed, request.quorum)} · by {request.requested_by} · {extra}"
        )
    return "\n".join(lines)


