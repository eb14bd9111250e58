"""What Slack sends to an app, as signed HTTP requests: slash commands, block actions, view submissions and
events (`*_payload` / `*_body`), the signature (`sign`), and `post_signed` to send one."""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import random
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp

from testkit.fakes.slack.records import (
    DEFAULT_APP_ID,
    DEFAULT_BOT_USER_ID,
    DEFAULT_TEAM_DOMAIN,
    DEFAULT_TEAM_ID,
    DEFAULT_VERIFICATION_TOKEN,
    JSONDict,
)

# ---------------------------------------------------------------------- signing and request builders


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature headers for ``body`` (what Bolt verifies on /slack/events)."""
    ts = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


_wall_counter = itertools.count()


def _wall_ts() -> str:
    """A unique Slack-style ts near now, for events that did not come from the fake's store."""
    micros = int(time.time() * 1_000_000) + next(_wall_counter)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _trigger_id() -> str:
    return f"{random.randint(10**12, 10**13 - 1)}.{random.randint(10**11, 10**12 - 1)}.{uuid.uuid4().hex}"


def slash_command_payload(
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/signoff",
    team_id: str = DEFAULT_TEAM_ID,
    *,
    user_name: str | None = None,
    channel_name: str = "ops",
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
    trigger_id: str | None = None,
) -> dict[str, str]:
    """The fields Slack sends for a slash command (form fields in HTTP mode, the Socket Mode payload)."""
    return {
        "token": DEFAULT_VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }


def slash_command_body(
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/signoff",
    team_id: str = DEFAULT_TEAM_ID,
    **kwargs: Any,
) -> bytes:
    """A slash command as Slack POSTs it: ``application/x-www-form-urlencoded``."""
    payload = slash_command_payload(text, user_id, channel_id, response_url, command, team_id, **kwargs)
    return urlencode(payload).encode()


def block_actions_payload(
    user_id: str,
    channel_id: str,
    message_ts: str,
    action_id: str,
    value: str,
    response_url: str,
    *,
    block_id: str = "signoff_actions",
    button_text: str = "Button",
    message: JSONDict | None = None,
    user_name: str | None = None,
    channel_name: str = "ops",
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
    trigger_id: str | None = None,
) -> JSONDict:
    """A ``block_actions`` button click as Slack builds it; pass ``message=fake.message(...)``."""
    name = user_name or user_id.lower()
    msg = (
        copy.deepcopy(message)
        if message is not None
        else {
            "type": "message",
            "user": bot_user_id,
            "ts": message_ts,
            "text": "",
            "team": team_id,
            "blocks": [],
        }
    )
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": DEFAULT_VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": msg,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": _wall_ts(),
            }
        ],
    }


def block_actions_body(
    user_id: str,
    channel_id: str,
    message_ts: str,
    action_id: str,
    value: str,
    response_url: str,
    **kwargs: Any,
) -> bytes:
    """A button click as Slack POSTs it: form-encoded, one ``payload`` field holding the JSON."""
    payload = block_actions_payload(user_id, channel_id, message_ts, action_id, value, response_url, **kwargs)
    return urlencode({"payload": json.dumps(payload)}).encode()


def view_submission_payload(
    user_id: str,
    view: JSONDict,
    values: dict[str, str],
    *,
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
) -> JSONDict:
    """A ``view_submission`` for a modal views.open showed (``fake.views_for(user)[-1]``): ``values`` maps
    each input's ``action_id`` to what was typed, placed in ``view.state.values`` as Slack does."""
    state: JSONDict = {}
    for block in view.get("blocks") or []:
        element = block.get("element") or {}
        if block.get("type") == "input" and element.get("action_id") in values:
            value = values[element["action_id"]]
            state.setdefault(block["block_id"], {})[element["action_id"]] = {
                "type": element.get("type", "plain_text_input"), "value": value or None}
    submitted = {k: v for k, v in copy.deepcopy(view).items() if k != "user"}
    submitted["state"] = {"values": state}
    name = user_id.lower()
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": DEFAULT_VERIFICATION_TOKEN,
        "trigger_id": _trigger_id(),
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_submission_body(user_id: str, view: JSONDict, values: dict[str, str], **kwargs: Any) -> bytes:
    """A modal's submission as Slack POSTs it: form-encoded, one ``payload`` field holding the JSON."""
    return urlencode({"payload": json.dumps(view_submission_payload(user_id, view, values, **kwargs))}).encode()


def event_callback(
    event: JSONDict,
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    *,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
) -> JSONDict:
    """The Events API ``event_callback`` envelope around ``event``."""
    return {
        "token": DEFAULT_VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def event_body(
    event: JSONDict,
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    *,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
) -> bytes:
    """An Events API request body (JSON) for Bolt's HTTP endpoint."""
    return json.dumps(event_callback(event, team_id, api_app_id, bot_user_id=bot_user_id)).encode()


def message_event(
    user: str, channel: str, text: str, ts: str | None = None, *, team_id: str = DEFAULT_TEAM_ID
) -> JSONDict:
    """A ``message`` event from a human in a public channel."""
    stamp = ts or _wall_ts()
    return {
        "type": "message",
        "user": user,
        "text": text,
        "ts": stamp,
        "team": team_id,
        "channel": channel,
        "channel_type": "channel",
        "event_ts": stamp,
        "client_msg_id": str(uuid.uuid4()),
    }


def thread_message_event(
    user: str,
    channel: str,
    text: str,
    thread_ts: str,
    ts: str | None = None,
    *,
    team_id: str = DEFAULT_TEAM_ID,
) -> JSONDict:
    """A reply in the thread under ``thread_ts`` (a ``message`` event carrying ``thread_ts``)."""
    event = message_event(user, channel, text, ts, team_id=team_id)
    event["thread_ts"] = thread_ts
    return event


def reaction_added_event(
    user: str, reaction: str, channel: str, ts: str, *, item_user: str = DEFAULT_BOT_USER_ID
) -> JSONDict:
    """A ``reaction_added`` event; ``reaction`` is a bare name such as ``white_check_mark`` or ``+1``."""
    return {
        "type": "reaction_added",
        "user": user,
        "reaction": reaction,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "item_user": item_user,
        "event_ts": _wall_ts(),
    }


async def post_signed(
    url: str,
    body: bytes,
    secret: str,
    content_type: str | None = None,
    timestamp: int | None = None,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout: float = 10.0,
) -> tuple[int, str]:
    """POST ``body`` signed as Slack would; ``content_type`` defaults to JSON for ``{…}``, else form."""
    if content_type is None:
        is_json = body.lstrip().startswith(b"{")
        content_type = "application/json" if is_json else "application/x-www-form-urlencoded"
    headers = {"Content-Type": content_type, **sign(secret, body, timestamp)}
    own = session is None
    client = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
    try:
        async with client.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()
    finally:
        if own:
            await client.close()
