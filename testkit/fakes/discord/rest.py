"""The REST plumbing of the fake Discord: the route table, recording every call, reading JSON bodies the
way Discord does, and answering with Discord's JSON (a part of FakeDiscord)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

from aiohttp import web

from testkit.fakes.discord.records import _DELAY, API_PREFIX, DiscordCall, _Handler, _HTTPError, _json_response, _Req


class RestPlumbing:
    """FakeDiscord's part that receives REST calls and hands them to their route."""

    # ------------------------------------------------------------------ internals: REST plumbing

    def _record(self, call: DiscordCall) -> None:
        with self._lock:
            self.calls.append(call)
        self._bump()

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], _Handler, bool]]:
        ch = r"/channels/(?P<channel_id>\d+)"
        msg = ch + r"/messages/(?P<message_id>\d+)"
        react = msg + r"/reactions/(?P<emoji>[^/]+)"
        app = r"/applications/(?P<app_id>\d+)"
        hook = r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)"
        table: list[tuple[str, str, _Handler, bool]] = [
            ("GET", r"/users/@me", self._r_get_me, True),
            ("GET", r"/users/(?P<user_id>\d+)", self._r_get_user, True),
            ("POST", r"/users/@me/channels", self._r_create_dm, True),
            ("GET", r"/oauth2/applications/@me", self._r_get_application, True),
            ("GET", r"/applications/@me", self._r_get_application, True),
            ("GET", r"/gateway", self._r_get_gateway, False),
            ("GET", r"/gateway/bot", self._r_get_gateway_bot, True),
            ("GET", ch, self._r_get_channel, True),
            ("POST", ch + r"/typing", self._r_typing, True),
            ("GET", ch + r"/messages", self._r_list_messages, True),
            ("POST", ch + r"/messages", self._r_create_message, True),
            ("GET", msg, self._r_get_message, True),
            ("PATCH", msg, self._r_edit_message, True),
            ("DELETE", msg, self._r_delete_message, True),
            ("PUT", react + r"/@me", self._r_add_own_reaction, True),
            ("DELETE", react + r"/@me", self._r_remove_own_reaction, True),
            ("DELETE", react + r"/(?P<user_id>\d+)", self._r_remove_user_reaction, True),
            ("GET", react, self._r_get_reactions, True),
            ("POST", msg + r"/threads", self._r_thread_from_message, True),
            ("POST", ch + r"/threads", self._r_thread_without_message, True),
            ("PUT", ch + r"/thread-members/@me", self._r_join_thread, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._r_get_guild, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._r_get_guild_channels, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/roles", self._r_get_roles, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._r_get_member, True),
            ("GET", app + r"/commands", self._r_get_commands, True),
            ("PUT", app + r"/commands", self._r_put_commands, True),
            ("POST", app + r"/commands", self._r_post_command, True),
            ("GET", app + r"/guilds/(?P<guild_id>\d+)/commands", self._r_get_commands, True),
            ("PUT", app + r"/guilds/(?P<guild_id>\d+)/commands", self._r_put_commands, True),
            ("POST", app + r"/guilds/(?P<guild_id>\d+)/commands", self._r_post_command, True),
            (
                "POST",
                r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback",
                self._r_callback,
                False,
            ),
            ("POST", hook, self._r_followup, False),
            ("GET", hook + r"/messages/(?P<message_id>@original|\d+)", self._r_get_hook_message, False),
            ("PATCH", hook + r"/messages/(?P<message_id>@original|\d+)", self._r_edit_hook_message, False),
            ("DELETE", hook + r"/messages/(?P<message_id>@original|\d+)", self._r_delete_hook_message, False),
        ]
        return [(m, re.compile(p), h, auth) for m, p, h, auth in table]

    async def _read_body(self, request: web.Request) -> Any:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            raw = form.get("payload_json")
            body: Any = json.loads(str(raw)) if raw is not None else {}
            if isinstance(body, dict):
                body["_files"] = [
                    str(getattr(v, "filename", k)) for k, v in form.items() if k != "payload_json"
                ]
            return body
        raw_bytes = await request.read()
        if not raw_bytes:
            return None
        try:
            return json.loads(raw_bytes)
        except ValueError:
            return raw_bytes.decode("utf-8", "replace")

    async def _handle_rest(self, request: web.Request) -> web.StreamResponse:
        method = request.method.upper()
        path = request.path[len(API_PREFIX) :] or "/"
        call = DiscordCall(method, path, None, dict(request.headers), time.monotonic(), dict(request.query))
        call.json = await self._read_body(request)
        route_key = f"{method} {re.sub(r'[0-9]+', '{id}', path)}"
        bucket = hashlib.sha1(route_key.encode()).hexdigest()[:32]

        delay = self.faults.take(method, path, kinds=_DELAY.__eq__, chance=False)
        if delay is not None and not delay.commit:
            await self._sleep(delay.seconds)
        fault = self.faults.take(method, path, kinds=_DELAY.__ne__)
        if fault is not None and not fault.commit:
            return await self._answer_fault(call, fault, bucket)

        status, body = await self._route(request, call)
        if delay is not None and delay.commit:
            await self._sleep(delay.seconds)  # the change has landed; the client hears of it only now
        if fault is not None:  # committed: the change landed though the client sees a failure
            return await self._answer_fault(call, fault, bucket)
        call.status = 204 if body is None and status < 300 else status
        call.failed = status >= 400
        call.response = body
        self._record(call)
        headers = {  # generous: discord.py must never pre-emptively wait on the fake's buckets
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": bucket,
            "Via": "1.1 google",
        }
        return _json_response(status, body, headers)

    async def _route(self, request: web.Request, call: DiscordCall) -> tuple[int, Any]:
        path_matched = False
        for method, pattern, handler, needs_auth in self._routes:
            match = pattern.fullmatch(call.path)
            if match is None:
                continue
            path_matched = True
            if method != call.method:
                continue
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                return 401, {"message": "401: Unauthorized", "code": 0}
            req = _Req(call.method, call.path, match.groupdict(), call.json, call.query)
            try:
                return await handler(req)
            except _HTTPError as exc:
                return exc.status, exc.body
        if path_matched:
            return 405, {"message": "405: Method Not Allowed", "code": 0}
        return 404, {"message": "404: Not Found", "code": 0}
