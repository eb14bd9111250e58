"""Every sentence the chat commands say to a person: the help, the replies, the refusals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core.chat.cards import progress_bar
from core.domain.approvals import MAX_COMMENT_LENGTH, ApprovalRequest, RequestStatus
from core.domain.operations import ACCEPTED_FORMS_TEXT
from core.domain.policy import format_duration

HELP_TEXT = (
    "signoff: several people sign a Kubernetes operation in chat; it then runs exactly once.\n"
    "Commands:\n"
    "  request <action> [risk=low|medium|high|critical] [incident=INC-…] [reason=\"…\"]\n"
    "  status <id> · timeline <id> · list · cancel <id> (requester only)\n"
    "  incidents · resolve <INC-id> score=<1-5> · playbooks · help\n"
    "  breakglass <R-id> reason=\"…\" (alone: open reviews) · countersign <R-id> · dispute <R-id> reason=\"…\"\n"
    "Sign or veto with the Approve / Reject buttons on a request's card (\"Approve with comment…\" adds\n"
    "a comment beside your name), or type `approve <id> [comment=\"…\"]`. In a request's thread,\n"
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
APPROVE_USAGE = ("`approve` takes one id and an optional comment, like `approve R-42` or "
                 "`approve R-42 comment=\"checked the dashboards\"`; a request that asks for its target's name "
                 "takes `confirm=<name>` too, like `approve R-42 confirm=api`.")
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


def comment_too_long_text(length: int) -> str:
    return (f"A comment is at most {MAX_COMMENT_LENGTH} characters; yours has {length}. "
            "Shorten it and sign again.")


def comment_form_text(request: ApprovalRequest) -> str:
    """What `CommentForm` answers where no form can open (the console): how to type the same."""
    return (f"Sign {request.id} with a comment by typing `approve {request.id} comment=\"…\"` "
            f"(at most {MAX_COMMENT_LENGTH} characters).")


def comment_form_failed_text(request_id: str) -> str:
    return (f"⚠️ The comment form did not open; nothing was signed. Click again, or type "
            f"`approve {request_id} comment=\"…\"`.")


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




NO_SERVER_TEXT = ("This signoff is not configured for any Discord server, so this was refused. Ask an admin to "
                  "set `DISCORD_GUILD_ID` (or `DISCORD_CHANNEL_ID`, whose server is then the one served) and restart "
                  "signoff.")


def outside_workspace(platform: str, workspace: str | None, served: str) -> str:
    where = {"slack": "Slack workspace", "discord": "Discord server"}.get(platform, f"{platform} workspace")
    came = f"`{workspace}`" if workspace else "outside any"
    return (f"This signoff serves one {where} (`{served}`); this came from {came}, so it was refused. "
            f"Ask in the {where} signoff serves.")
