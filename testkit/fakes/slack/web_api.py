"""The Web API: its HTTP handling (tokens, recording, faults, `ok: false` errors) and each method the bot
calls (chat.*, reactions.*, conversations.*, views.open, users.info, auth.test, apps.connections.open)
(a part of FakeSlack)."""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Callable

from aiohttp import web

from testkit.fakes.slack.records import _APP_TOKEN_METHODS, _DELAY, _USER_ID_RE, JSONDict, SlackCall, _ApiError
from testkit.fakes.slack.validation import (
    _bearer,
    _need_channel,
    _read_args,
    _shown,
    _text_and_blocks,
    _truthy,
    _ts_key,
    _view_problems,
)


class WebApi:
    """FakeSlack's Web API."""

    # ------------------------------------------------------------------ internals: HTTP handlers

    def _record(self, call: SlackCall) -> None:
        with self._lock:
            self.calls.append(call)
        self._bump()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        call = SlackCall(method, {}, dict(request.headers), time.monotonic(), path=request.path)
        args, parse_error = await _read_args(request)
        token = _bearer(request.headers.get("Authorization")) or args.pop("token", None)
        args.pop("token", None)
        call.args = args

        delay = self.faults.take(method, kinds=_DELAY.__eq__, chance=False)
        if delay is not None:
            await self._sleep(delay.seconds)
        fault = self.faults.take(method, kinds=_DELAY.__ne__)
        if fault is not None and not fault.commit:
            return await self._answer_fault(call, fault)

        try:
            if parse_error is not None:
                raise _ApiError(parse_error)
            with self._lock:
                body = self._dispatch(method, token, args)
        except _ApiError as exc:
            body = {"ok": False, "error": exc.error, **exc.extra}
        if fault is not None:  # committed: the write landed even though the client sees a failure
            return await self._answer_fault(call, fault)
        call.response = body
        call.failed = not body.get("ok", False)
        call.error = body.get("error")
        self._record(call)
        return web.json_response(body)

    def _dispatch(self, method: str, token: str | None, args: JSONDict) -> JSONDict:
        handler = self._methods().get(method)
        if handler is None:
            raise _ApiError("unknown_method")
        if method == "api.test":  # the one method Slack answers without a token
            return handler(args)
        if not token:
            raise _ApiError("not_authed")
        wanted = self.app_token if method in _APP_TOKEN_METHODS else self.bot_token
        if token != wanted:
            if token in (self.app_token, self.bot_token):
                raise _ApiError("not_allowed_token_type")
            raise _ApiError("invalid_auth")
        return handler(args)

    def _methods(self) -> dict[str, Callable[[JSONDict], JSONDict]]:
        return {
            "api.test": lambda args: {"ok": True, "args": args},
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "conversations.open": self._conversations_open,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "users.info": self._users_info,
            "apps.connections.open": self._apps_connections_open,
            "views.open": self._views_open,
        }

    # ------------------------------------------------------------------ internals: Web API methods

    def _auth_test(self, args: JSONDict) -> JSONDict:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "signoff test",
            "user": "signoff",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        text, blocks = _text_and_blocks(args)
        if not text and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
        msg = self._bot_message(text, blocks)
        metadata = args.get("metadata")
        if metadata is not None:
            # Slack keeps `metadata` ({event_type, event_payload}) with the message; reads show it on request.
            if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str):
                raise _ApiError("invalid_metadata_format")
            msg["metadata"] = copy.deepcopy(metadata)
        thread_ts = args.get("thread_ts") or None
        self._store_message(channel, msg, thread_ts)
        return {"ok": True, "channel": channel, "ts": msg["ts"], "message": _shown(msg, False)}

    def _chat_update(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        ts = args.get("ts")
        if not ts:
            raise _ApiError("message_not_found")
        text, blocks = _text_and_blocks(args)
        msg = self._find(channel, str(ts))
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.get("user") != self.bot_user_id:
            raise _ApiError("cant_update_message")
        if text is None and blocks is None and "attachments" not in args:
            raise _ApiError("no_text")
        if text is not None:
            msg["text"] = text
        if blocks is not None:  # no blocks: Slack keeps the old ones
            msg["blocks"] = blocks
        msg["edited"] = {"user": self.bot_user_id, "ts": self.next_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": msg["ts"],
            "text": msg.get("text", ""),
            "message": copy.deepcopy(msg),
        }

    def _chat_post_ephemeral(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        user = args.get("user")
        if not user:
            raise _ApiError("user_not_in_channel")
        text, blocks = _text_and_blocks(args)
        if not text and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
        message_ts = self.next_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": text,
                "blocks": blocks,
                "thread_ts": args.get("thread_ts"),
                "message_ts": message_ts,
                "via": "chat.postEphemeral",
            }
        )
        return {"ok": True, "message_ts": message_ts}

    def _chat_delete(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        ts = str(args.get("ts") or "")
        msg = self._find(channel, ts) if ts else None
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.get("user") != self.bot_user_id:
            raise _ApiError("cant_delete_message")
        self._messages[channel].remove(msg)
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_get_permalink(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        ts = str(args.get("message_ts") or "")
        if not ts or self._find(channel, ts) is None:
            raise _ApiError("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _reaction_target(self, args: JSONDict) -> tuple[JSONDict, str]:
        channel, ts, name = args.get("channel"), args.get("timestamp"), args.get("name")
        if not channel or not ts:
            raise _ApiError("no_item_specified")
        if not name:
            raise _ApiError("invalid_name")
        msg = self._find(str(channel), str(ts))
        if msg is None:
            raise _ApiError("message_not_found")
        return msg, str(name).strip(":")

    def _reactions_add(self, args: JSONDict) -> JSONDict:
        msg, name = self._reaction_target(args)
        reactions: list[JSONDict] = msg.setdefault("reactions", [])
        for r in reactions:
            if r["name"] == name:
                if self.bot_user_id in r["users"]:
                    raise _ApiError("already_reacted")
                r["users"].append(self.bot_user_id)
                r["count"] += 1
                break
        else:
            reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        return {"ok": True}

    def _reactions_remove(self, args: JSONDict) -> JSONDict:
        msg, name = self._reaction_target(args)
        for r in msg.get("reactions", []):
            if r["name"] == name and self.bot_user_id in r["users"]:
                r["users"].remove(self.bot_user_id)
                r["count"] -= 1
                if r["count"] == 0:
                    msg["reactions"].remove(r)
                return {"ok": True}
        raise _ApiError("no_reaction")

    def _conversations_open(self, args: JSONDict) -> JSONDict:
        """A DM with one user (`users` = "U…"): Slack answers with the IM channel, the same one each time."""
        users = str(args.get("users") or "")
        if not users or "," in users:
            raise _ApiError("users_not_found" if not users else "not_enough_users")
        channel = "D" + users.removeprefix("U")
        return {"ok": True, "channel": {"id": channel, "is_im": True, "user": users}}

    def _conversations_replies(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        ts = str(args.get("ts") or "")
        parent = self._find(channel, ts) if ts else None
        if parent is None:
            raise _ApiError("thread_not_found")
        replies = [m for m in self._messages[channel] if m.get("thread_ts") == ts and m["ts"] != ts]
        replies.sort(key=lambda m: _ts_key(m["ts"]))
        with_metadata = _truthy(args.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [_shown(m, with_metadata) for m in [parent, *replies]],
            "has_more": False,
            "response_metadata": {"next_cursor": ""},
        }

    def _conversations_history(self, args: JSONDict) -> JSONDict:
        channel = _need_channel(args)
        top = [m for m in self._messages.get(channel, []) if m.get("thread_ts") in (None, m["ts"])]
        top.sort(key=lambda m: _ts_key(m["ts"]), reverse=True)
        with_metadata = _truthy(args.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [_shown(m, with_metadata) for m in top],
            "has_more": False,
            "response_metadata": {"next_cursor": ""},
        }

    def _views_open(self, args: JSONDict) -> JSONDict:
        trigger = args.get("trigger_id")
        if not trigger:
            raise _ApiError("invalid_arguments")
        trigger = str(trigger)
        if trigger in self._used_triggers:
            raise _ApiError("trigger_exchanged")
        if not re.fullmatch(r"\d+\.\d+\.[0-9a-f]+", trigger):
            raise _ApiError("invalid_trigger_id")
        self._used_triggers.add(trigger)
        # A trigger from `new_trigger_id` names its user (and can expire); one built elsewhere is taken as is.
        user, at = self._triggers.pop(trigger, (None, time.monotonic()))
        if self.trigger_ttl is not None and time.monotonic() - at > self.trigger_ttl:
            raise _ApiError("expired_trigger_id")
        view = args.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise _ApiError("invalid_arguments") from None
        problems = _view_problems(view)
        if problems:
            raise _ApiError("invalid_arguments", response_metadata={"messages": problems})
        assert isinstance(view, dict)
        stored = {
            **copy.deepcopy(view),
            "id": "V" + uuid.uuid4().hex[:10].upper(),
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "state": {"values": {}},
            "hash": uuid.uuid4().hex[:16],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "user": user,
        }
        self.views.append(stored)
        public = {k: v for k, v in stored.items() if k != "user"}
        return {"ok": True, "view": copy.deepcopy(public)}

    def _users_info(self, args: JSONDict) -> JSONDict:
        user_id = str(args.get("user") or "")
        user = self.users.get(user_id)
        if user is None:
            if not _USER_ID_RE.match(user_id):
                raise _ApiError("user_not_found")
            user = self._user_record(user_id, user_id.lower())
        return {"ok": True, "user": copy.deepcopy(user)}

    def _apps_connections_open(self, args: JSONDict) -> JSONDict:
        ticket = uuid.uuid4().hex
        self._socket.tickets.add(ticket)
        return {"ok": True, "url": f"{self.socket_url}?ticket={ticket}"}
