"""Trigger ids (for views.open) and response URLs, and what a post to a response URL does (a part of
FakeSlack)."""

from __future__ import annotations

import copy
import json
import time
import uuid
from urllib.parse import parse_qsl

from aiohttp import web

from testkit.fakes.slack.records import _DELAY, JSONDict, SlackCall, _ApiError, _ResponseUrl
from testkit.fakes.slack.requests import _trigger_id
from testkit.fakes.slack.validation import _truthy, _validate_blocks


class ResponseUrls:
    """FakeSlack's trigger ids and response URLs."""

    # ------------------------------------------------------------------ response_url

    def new_trigger_id(self, user_id: str) -> str:
        """A trigger_id for a click by ``user_id``; views.open takes it once (and within ``trigger_ttl``)."""
        trigger = _trigger_id()
        with self._lock:
            self._triggers[trigger] = (user_id, time.monotonic())
        return trigger

    def views_for(self, user: str) -> list[JSONDict]:
        """The modals opened for ``user``, oldest first."""
        with self._lock:
            return [copy.deepcopy(v) for v in self.views if v.get("user") == user]

    def new_response_url(
        self, channel: str | None = None, message_ts: str | None = None, *, user_id: str | None = None
    ) -> str:
        """A response_url; tie it to a message so ``replace_original`` / ``delete_original`` act on it."""
        rid = uuid.uuid4().hex
        with self._lock:
            self._response_urls[rid] = _ResponseUrl(channel, message_ts, user_id)
        return f"{self.base_url}/response/{rid}"

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        rid = request.match_info["rid"]
        call = SlackCall("response_url", {}, dict(request.headers), time.monotonic(), path=request.path)
        raw = await request.text()
        try:
            parsed = json.loads(raw) if raw.lstrip().startswith("{") else dict(parse_qsl(raw))
            if "payload" in parsed and isinstance(parsed["payload"], str):
                parsed = json.loads(parsed["payload"])
        except ValueError:
            parsed = None
        call.args = parsed if isinstance(parsed, dict) else {"_raw": raw}

        delay = self.faults.take("response_url", kinds=_DELAY.__eq__, chance=False)
        if delay is not None:
            await self._sleep(delay.seconds)
        fault = self.faults.take("response_url", kinds=_DELAY.__ne__)
        if fault is not None and not fault.commit:
            return await self._answer_fault(call, fault)

        status = 200
        body: JSONDict = {"ok": True}
        with self._lock:
            target = self._response_urls.get(rid)
            if target is None:
                status, body = 404, {"ok": False, "error": "expired_url"}
            elif not isinstance(parsed, dict):
                status, body = 400, {"ok": False, "error": "invalid_payload"}
            else:
                try:
                    self._apply_response_url(target, parsed)
                except _ApiError as exc:
                    status, body = 400, {"ok": False, "error": exc.error, **exc.extra}
        if fault is not None:  # committed: the message changed even though the client sees a failure
            return await self._answer_fault(call, fault)
        call.status, call.response = status, body
        call.failed = status != 200
        call.error = body.get("error")
        self._record(call)
        return web.json_response(body, status=status)

    def _apply_response_url(self, target: _ResponseUrl, body: JSONDict) -> None:
        """Slack's response_url semantics: delete/replace the source message, or post a new one."""
        original = (
            self._find(target.channel, target.message_ts)
            if target.channel is not None and target.message_ts is not None
            else None
        )
        if _truthy(body.get("delete_original")):
            if original is None or target.channel is None:
                raise _ApiError("message_not_found")
            self._messages[target.channel].remove(original)
            return
        text, blocks = body.get("text"), body.get("blocks")
        if blocks is not None:
            _validate_blocks(blocks)
        if _truthy(body.get("replace_original")):
            if original is None:
                raise _ApiError("message_not_found")
            original["text"] = text or ""
            if blocks is not None:
                original["blocks"] = blocks
            else:
                original.pop("blocks", None)
            original["edited"] = {"user": self.bot_user_id, "ts": self.next_ts()}
            return
        if not text and not blocks:
            raise _ApiError("no_text")
        if body.get("response_type") == "in_channel" and target.channel is not None:
            self._store_message(target.channel, self._bot_message(text, blocks), body.get("thread_ts"))
            return
        self.ephemerals.append(
            {
                "channel": target.channel,
                "user": target.user_id,
                "text": text,
                "blocks": blocks,
                "thread_ts": body.get("thread_ts"),
                "message_ts": self.next_ts(),
                "via": "response_url",
            }
        )
