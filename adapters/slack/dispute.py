"""The Dispute button of a break glass review, on Slack: it opens a modal asking the reason (`views.open`,
`callback_id` `signoff_dispute`, `private_metadata` the request and the channel); its submission records the
dispute, or shows the refusal in the modal so the person can fix it or cancel."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import structlog
from slack_bolt.context.ack.async_ack import AsyncAck

from adapters.slack import translate
from adapters.slack.jobs import Jobs
from adapters.slack.render import ACTION_PREFIX, VIEW_ERROR_MAX, VIEW_TITLE_MAX
from core.app.handlers import ChatCommands
from core.chat.breakglass_commands import from_dispute_form
from core.chat.cards import ButtonAction
from core.chat.commands import Reply
from core.chat.text import clip
from core.domain.breakglass import MAX_REASON

log = structlog.get_logger(__name__)

DISPUTE_CALLBACK_ID = ACTION_PREFIX + ButtonAction.dispute  # `signoff_dispute`
DISPUTE_BLOCK_ID = "signoff_dispute_reason"
DISPUTE_ACTION_ID = "reason"


def dispute_view(request_id: str, channel: str | None) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": DISPUTE_CALLBACK_ID,
        "private_metadata": json.dumps({"request": request_id, "channel": channel}),
        "title": {"type": "plain_text", "text": clip(f"Dispute {request_id}", VIEW_TITLE_MAX)},
        "submit": {"type": "plain_text", "text": "Dispute"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input",
            "block_id": DISPUTE_BLOCK_ID,
            "label": {"type": "plain_text", "text": "Why the break glass was not justified"},
            "element": {"type": "plain_text_input", "action_id": DISPUTE_ACTION_ID, "multiline": True,
                        "max_length": MAX_REASON},
        }],
    }


def dispute_submission(body: dict[str, Any]) -> translate.CommentSubmission | None:
    """The dispute modal submitted: `comment` is the reason (None when empty)."""
    view = translate._dict(body.get("view"))
    if body.get("type") != "view_submission" or view.get("callback_id") != DISPUTE_CALLBACK_ID:
        return None
    user = translate._str(translate._dict(body.get("user")).get("id"))
    try:
        metadata = translate._dict(json.loads(str(view.get("private_metadata") or "")))
    except ValueError:
        return None
    request = translate._str(metadata.get("request"))
    if user is None or request is None:
        return None
    channel = translate._str(metadata.get("channel"))
    values = translate._dict(translate._dict(view.get("state")).get("values"))
    reason = translate._str(translate._dict(translate._dict(values.get(DISPUTE_BLOCK_ID)).get(DISPUTE_ACTION_ID))
                            .get("value"))
    return translate.CommentSubmission(request=request, comment=reason,
                                       ctx=translate._context(user, channel, translate._team_of(body)),
                                       reply_to=translate.Responder(user=user, channel=channel))


def dispute_listener(chat: ChatCommands, jobs: Jobs, tell: Callable[[translate.Responder, Reply], Awaitable[None]],
                     ) -> Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]:
    """The `view_submission` listener (Bolt injects `ack` and `body` by name): recorded before Slack hears
    "ok"; a refusal (no reason, not a reviewer, …) is shown in the modal under the reason."""
    async def on_dispute(ack: AsyncAck, body: dict[str, Any]) -> None:
        submission = dispute_submission(body)
        if submission is None:
            await ack()
            return
        reply = await chat.run(from_dispute_form(submission.request, submission.comment), submission.ctx)
        log.info("slack.dispute", user=submission.ctx.account, request_id=submission.request[:20], ok=reply.ok)
        if not reply.ok:
            await ack(response_action="errors", errors={DISPUTE_BLOCK_ID: clip(reply.text, VIEW_ERROR_MAX)})
            return
        await ack()
        await jobs.submit("dispute-reply", partial(tell, submission.reply_to, reply))
    return on_dispute
