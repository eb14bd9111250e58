"""Socket Mode: the websocket a client opens with apps.connections.open's URL, envelopes sent to it, acks,
disconnects (a part of FakeSlack)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import uuid

import aiohttp
from aiohttp import web

from testkit.fakes.slack.records import JSONDict, SocketEnvelopeType
from testkit.fakes.slack.requests import event_callback


class SocketMode:
    """FakeSlack's Socket Mode websocket."""

    # ------------------------------------------------------------------ Socket Mode

    @property
    def socket_connect_count(self) -> int:
        """How many websocket connections have been accepted so far (reconnects included)."""
        with self._lock:
            return self._socket.connect_count

    @property
    def socket_open_count(self) -> int:
        with self._lock:
            return len(self._socket.connections)

    @property
    def socket_sent(self) -> list[JSONDict]:
        with self._lock:
            return copy.deepcopy(self._socket.sent)

    @property
    def socket_received(self) -> list[JSONDict]:
        with self._lock:
            return copy.deepcopy(self._socket.received)

    async def wait_socket_connected(self, timeout: float = 5.0, *, count: int = 1) -> int:
        """Wait until ``count`` connections were accepted in total and one is open; returns the total."""

        def check() -> int | None:
            s = self._socket
            return s.connect_count if s.connect_count >= count and s.connections else None

        return await self._on_own_loop(self._wait_until(check, timeout, f"socket connection #{count}"))

    async def socket_send(
        self,
        type: SocketEnvelopeType,
        payload: JSONDict,
        *,
        timeout: float = 5.0,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Send an envelope on the newest open connection (waiting for one); returns its envelope_id."""
        return await self._on_own_loop(self._socket_send(type, payload, timeout, retry_attempt, retry_reason))

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> JSONDict:
        """The client's ack for ``envelope_id``: ``{"envelope_id": ..., "payload"?: ...}``."""
        return await self._on_own_loop(
            self._wait_until(lambda: self._socket.acks.get(envelope_id), timeout, f"ack of {envelope_id}")
        )

    async def socket_disconnect(self) -> int:
        """Close every open connection with a close frame, as Slack does when it rotates servers."""
        return await self._on_own_loop(self._socket_disconnect())

    async def socket_send_disconnect(self, reason: str = "refresh_requested") -> int:
        """Send Slack's ``{"type": "disconnect"}`` message, which makes clients reconnect."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        return await self._on_own_loop(self._socket_broadcast(message))

    # ------------------------------------------------------------------ internals: Socket Mode

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            known = ticket in self._socket.tickets
        if not known:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            self._socket.connections.append(ws)
            self._socket.connect_count += 1
            open_count = len(self._socket.connections)
        self._bump()
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": open_count,
                    "debug_info": {
                        "host": "applink-fake",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    data = {"_raw": msg.data}
                with self._lock:
                    self._socket.received.append(data)
                    if isinstance(data, dict) and data.get("envelope_id"):
                        self._socket.acks[str(data["envelope_id"])] = data
                self._bump()
        finally:
            with self._lock:
                if ws in self._socket.connections:
                    self._socket.connections.remove(ws)
            self._bump()
        return ws

    async def _socket_send(
        self,
        type: SocketEnvelopeType,
        payload: JSONDict,
        within: float,
        retry_attempt: int,
        retry_reason: str,
    ) -> str:
        await self._wait_until(
            lambda: self._socket.connections[-1] if self._socket.connections else None,
            within,
            "open socket connection",
        )
        if type == "events_api" and payload.get("type") != "event_callback":
            payload = event_callback(
                payload, team_id=self.team_id, api_app_id=self.app_id, bot_user_id=self.bot_user_id
            )
        envelope_id = str(uuid.uuid4())
        envelope: JSONDict = {"envelope_id": envelope_id, "type": type, "payload": payload}
        if type == "events_api":
            envelope["accepts_response_payload"] = False
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        else:
            envelope["accepts_response_payload"] = True
        with self._lock:
            ws = self._socket.connections[-1]
            self._socket.sent.append(envelope)
        await ws.send_json(envelope)
        return envelope_id

    async def _socket_disconnect(self) -> int:
        with self._lock:
            sockets = list(self._socket.connections)
        for ws in sockets:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY), 2.0)
        return len(sockets)

    async def _socket_broadcast(self, message: JSONDict) -> int:
        with self._lock:
            sockets = list(self._socket.connections)
            self._socket.sent.append(message)
        for ws in sockets:
            await ws.send_json(message)
        return len(sockets)
