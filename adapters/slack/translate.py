"""Slack payloads → what the core needs to know. Pure functions: no I/O, no rules.

Each function returns None for a payload signoff has nothing to do with (a bot's own
message, an edit, chatter outside a thread, a button of some other app), so the listener
can acknowledge it and stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from adapters.slack.render import (
    COMMENT_ACTION_ID,
    COMMENT_BLOCK_ID,
    COMMENT_CALLBACK_ID,
    CONFIRM_ACTION_ID,
    CONFIRM_BLOCK_ID,
    CONFIRM_CALLBACK_ID,
    action_name,
)
from core.chat.commands import ChatContext
from core.domain.approvals import Place

PLATFORM = "slack"

# Message subtypes that are still a person writing in a thread ("also send to #channel").
_HUMAN_SUBTYPES = frozenset({None, "thread_broadcast"})


@dataclass(frozen=True)
class Responder:
    """Where a private answer to the person goes: the payload's response_url, else chat.postEphemeral."""

    user: str
    channel: str | None
    response_url: str | None = None
    thread_ts: str | None = None


@dataclass(frozen=True)
class SlashCommand:
    text: str
    ctx: ChatContext
    reply_to: Responder


@dataclass(frozen=True)
class Click:
    action: str
    value: str
    ctx: ChatContext
    reply_to: Responder
    trigger_id: str | None = None  # what views.open needs to open a modal in answer (valid 3 s)


@dataclass(frozen=True)
class CommentSubmission:
    """The comment modal submitted: sign `request` with `comment` (None when the input was empty)."""

    request: str
    comment: str | None
    ctx: ChatContext
    reply_to: Responder


@dataclass(frozen=True)
class ThreadMessage:
    thread_ts: str
    text: str
    ctx: ChatContext


@dataclass(frozen=True)
class ReactionVote:
    message_ts: str
    reaction: str
    ctx: ChatContext
    reply_to: Responder


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _team_of(body: dict[str, Any]) -> str | None:
    """The acting person's own workspace: in a channel shared with another organisation it is theirs."""
    return _str(_dict(body.get("user")).get("team_id")) or _str(_dict(body.get("team")).get("id"))


def _context(user: str, channel: str | None, team: str | None) -> ChatContext:
    place = Place(platform=PLATFORM, channel=channel) if channel else None
    return ChatContext(platform=PLATFORM, account=user, place=place, workspace=team)


def slash_command(body: dict[str, Any]) -> SlashCommand | None:
    """`/signoff <text>`: form fields in HTTP mode, the same keys in a Socket Mode payload."""
    user = _str(body.get("user_id"))
    if user is None:
        return None
    channel = _str(body.get("channel_id"))
    return SlashCommand(
        text=str(body.get("text") or ""),
        ctx=_context(user, channel, _str(body.get("team_id"))),
        reply_to=Responder(user=user, channel=channel, response_url=_str(body.get("response_url"))),
    )


def click(body: dict[str, Any]) -> Click | None:
    """A `block_actions` button whose action_id is `signoff_<action>`; value is the request id."""
    if body.get("type") != "block_actions":
        return None
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return None
    action = action_name(_str(actions[0].get("action_id")) or "")
    if action is None:
        return None
    user_info = _dict(body.get("user"))
    user = _str(user_info.get("id"))
    if user is None:
        return None
    channel_info = _dict(body.get("channel"))
    container = _dict(body.get("container"))
    channel = _str(channel_info.get("id")) or _str(container.get("channel_id"))
    return Click(
        action=action,
        value=str(actions[0].get("value") or ""),
        ctx=_context(user, channel, _team_of(body)),
        reply_to=Responder(user=user, channel=channel, response_url=_str(body.get("response_url"))),
        trigger_id=_str(body.get("trigger_id")),
    )


def comment_submission(body: dict[str, Any]) -> CommentSubmission | None:
    """A `view_submission` of signoff's comment modal; the request and channel come from its private_metadata."""
    if body.get("type") != "view_submission":
        return None
    view = _dict(body.get("view"))
    if view.get("callback_id") != COMMENT_CALLBACK_ID:
        return None
    user = _str(_dict(body.get("user")).get("id"))
    try:
        metadata = _dict(json.loads(str(view.get("private_metadata") or "")))
    except ValueError:
        return None
    request = _str(metadata.get("request"))
    if user is None or request is None:
        return None
    channel = _str(metadata.get("channel"))
    values = _dict(_dict(view.get("state")).get("values"))
    comment = _str(_dict(_dict(values.get(COMMENT_BLOCK_ID)).get(COMMENT_ACTION_ID)).get("value"))
    return CommentSubmission(request=request, comment=comment, ctx=_context(user, channel, _team_of(body)),
                             reply_to=Responder(user=user, channel=channel))


@dataclass(frozen=True)
class ConfirmSubmission:
    """The typed-confirmation modal submitted: sign `request` if `typed` names its target."""

    request: str
    typed: str
    comment: str | None
    view_id: str | None
    ctx: ChatContext


def confirm_submission(body: dict[str, Any]) -> ConfirmSubmission | None:
    """A `view_submission` of the `signoff_confirm` modal; its private_metadata is the request id."""
    if body.get("type") != "view_submission":
        return None
    view = _dict(body.get("view"))
    user = _str(_dict(body.get("user")).get("id"))
    request = _str(view.get("private_metadata"))
    if view.get("callback_id") != CONFIRM_CALLBACK_ID or user is None or request is None:
        return None
    values = _dict(_dict(view.get("state")).get("values"))
    typed = _str(_dict(_dict(values.get(CONFIRM_BLOCK_ID)).get(CONFIRM_ACTION_ID)).get("value")) or ""
    comment = _str(_dict(_dict(values.get(COMMENT_BLOCK_ID)).get(COMMENT_ACTION_ID)).get("value"))
    return ConfirmSubmission(request=request, typed=typed, comment=comment, view_id=_str(view.get("id")),
                             ctx=_context(user, None, _team_of(body)))


def thread_message(event: dict[str, Any], bot_user_id: str | None, team: str | None = None) -> ThreadMessage | None:
    """A person's reply inside a thread; None for top-level messages, edits, deletions and bots."""
    if event.get("type") != "message" or event.get("subtype") not in _HUMAN_SUBTYPES:
        return None
    if event.get("bot_id") or event.get("bot_profile"):
        return None
    user = _str(event.get("user"))
    thread_ts = _str(event.get("thread_ts"))
    ts = _str(event.get("ts"))
    if user is None or user == bot_user_id or thread_ts is None or thread_ts == ts:
        return None
    team = _str(event.get("user_team")) or _str(event.get("team")) or team
    return ThreadMessage(thread_ts=thread_ts, text=str(event.get("text") or ""),
                         ctx=_context(user, _str(event.get("channel")), team))


def reaction_vote(event: dict[str, Any], bot_user_id: str | None, team: str | None = None) -> ReactionVote | None:
    """`reaction_added` on a message: the core decides whether the message is a playbook offer."""
    if event.get("type") != "reaction_added":
        return None
    item = _dict(event.get("item"))
    user = _str(event.get("user"))
    ts = _str(item.get("ts"))
    reaction = _str(event.get("reaction"))
    if user is None or user == bot_user_id or ts is None or reaction is None or item.get("type") != "message":
        return None
    channel = _str(item.get("channel"))
    # Skin tones arrive as `+1::skin-tone-3`; the vote is the same.
    name = reaction.split("::", 1)[0]
    team = _str(event.get("user_team")) or team
    return ReactionVote(message_ts=ts, reaction=name, ctx=_context(user, channel, team),
                        reply_to=Responder(user=user, channel=channel))


def acting_team(body: dict[str, Any]) -> str | None:
    """The workspace whatever arrived came from: the acting person's own (a shared channel's other
    organisation is theirs), else the envelope's."""
    if body.get("type") == "event_callback":
        event = _dict(body.get("event"))
        return _str(event.get("user_team")) or _str(event.get("team")) or _str(body.get("team_id"))
    if "command" in body:
        return _str(body.get("team_id"))
    return _team_of(body) or _str(body.get("team_id"))


def delivery_key(body: dict[str, Any], bot_user_id: str | None) -> str | None:
    """What makes a delivery Slack (or a replay) may send twice unique: a slash command's `trigger_id`, an
    event's `event_id` (only for events signoff answers: thread replies and reactions). None: nothing to dedupe."""
    if "command" in body:
        trigger = _str(body.get("trigger_id"))
        return f"slack:command:{trigger}" if trigger else None
    event_id = _str(body.get("event_id"))
    if body.get("type") != "event_callback" or event_id is None:
        return None
    event = _dict(body.get("event"))
    if thread_message(event, bot_user_id) is None and reaction_vote(event, bot_user_id) is None:
        return None
    return f"slack:event:{event_id}"


def responder(body: dict[str, Any]) -> Responder | None:
    """Where to tell the person who sent `body` something privately (a failure, a refusal)."""
    command = slash_command(body)
    if command is not None:
        return command.reply_to
    user = _str(_dict(body.get("user")).get("id"))
    if user is None:
        return None
    channel = _str(_dict(body.get("channel")).get("id")) or _str(_dict(body.get("container")).get("channel_id"))
    return Responder(user=user, channel=channel, response_url=_str(body.get("response_url")))
