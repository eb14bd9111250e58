"""The gateway websocket: HELLO, IDENTIFY (intents, privileged intents), RESUME, heartbeats, member
chunks and dispatches filtered by intent and the message-content rule (a part of FakeDiscord)."""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
import time

from aiohttp import WSMsgType, web

from testkit.fakes.discord.records import (
    _EVENT_INTENTS,
    FLAG_EPHEMERAL,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    JSON,
    PRIVILEGED_INTENTS,
    GatewayFrame,
    _Conn,
    _Session,
)


class Gateway:
    """FakeDiscord's gateway websocket."""

    # ------------------------------------------------------------------ gateway

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        conn = _Conn(ws, dict(request.query))
        with self._lock:
            self._conns.append(conn)
            self.gateway_connects.append(dict(request.query))
        self._bump()
        try:
            await ws.send_str(
                json.dumps(
                    {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None}
                )
            )
            while True:
                msg = await ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    code = msg.data if msg.type is WSMsgType.CLOSE else None
                    if conn.session is not None and not conn.server_closed and code in (1000, 1001):
                        conn.session.alive = False  # a clean client close ends the session
                    break
                try:
                    frame = json.loads(msg.data if msg.type is WSMsgType.TEXT else bytes(msg.data).decode())
                except (ValueError, UnicodeDecodeError):
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                if not isinstance(frame, dict):
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                try:
                    await self._on_gateway_frame(conn, frame)
                except (ConnectionError, RuntimeError):
                    break  # the client went away mid-answer; its session stays resumable
                if ws.closed:
                    break
        finally:
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
                if conn.session is not None and conn.session.ws is ws:
                    conn.session.ws = None
            self._bump()
        return ws

    async def _on_gateway_frame(self, conn: _Conn, frame: JSON) -> None:
        op = frame.get("op")
        data = frame.get("d")
        with self._lock:
            self.gateway_received.append(
                GatewayFrame(conn.session.session_id if conn.session else None, op, data, time.monotonic())
            )
        self._bump()
        ws = conn.ws
        if op == 1:
            await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
        elif op == 2:
            await self._identify(conn, data if isinstance(data, dict) else {})
        elif op == 6:
            await self._resume(conn, data if isinstance(data, dict) else {})
        elif op == 8 and conn.session is not None:
            await self._send_member_chunk(conn.session, data if isinstance(data, dict) else {})
        elif op in (3, 4, 8, 31, 36, 37):
            return
        else:
            await ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, conn: _Conn, data: JSON) -> None:
        ws = conn.ws
        if conn.session is not None:
            await ws.close(code=4005, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS and not self.privileged_intents_allowed:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session = _Session(secrets.token_hex(16), intents, copy.deepcopy(data), ws=ws)
        with self._lock:
            self.identifies.append(copy.deepcopy(data))
            self._sessions[session.session_id] = session
            conn.session = session
            ready: JSON = {
                "v": 10,
                "user": copy.deepcopy(self.bot_user),
                "guilds": [{"id": self.guild_id, "unavailable": True}],
                "session_id": session.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.gateway_url,
                "application": {"id": self.application_id, "flags": (1 << 15) | (1 << 19) | (1 << 23)},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": ["fake"],
                "user_settings": {},
                "auth": {},
                "shard": data.get("shard", [0, 1]),
                "_trace": ['["fake-discord",{"micros":0}]'],
            }
            guild = self._guild_payload(gateway=True, intents=intents)
        await self._send_dispatch(session, "READY", ready)
        if intents & INTENT_GUILDS:
            await self._send_dispatch(session, "GUILD_CREATE", guild)
        with self._lock:
            self.ready_count += 1
        self._bump()

    async def _resume(self, conn: _Conn, data: JSON) -> None:
        ws = conn.ws
        with self._lock:
            session = self._sessions.get(str(data.get("session_id")))
        if session is None or not session.alive or data.get("token") != self.token:
            await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        seq = int(data.get("seq") or 0)
        async with session.lock:
            old = session.ws
            session.ws = ws
            conn.session = session
            if old is not None and old is not ws and not old.closed:
                with contextlib.suppress(Exception):
                    await old.close(code=4000)
            for s, text in session.log:
                if s > seq:
                    await ws.send_str(text)
        await self._send_dispatch(session, "RESUMED", {"_trace": ['["fake-discord",{"micros":0}]']})
        with self._lock:
            self.ready_count += 1
        self._bump()

    async def _send_member_chunk(self, session: _Session, data: JSON) -> None:
        with self._lock:
            members = [copy.deepcopy(m) for m in self._members.values()]
            wanted = data.get("user_ids")
            if wanted:
                ids = {str(u) for u in (wanted if isinstance(wanted, list) else [wanted])}
                members = [m for m in members if m["user"]["id"] in ids]
        chunk: JSON = {
            "guild_id": self.guild_id,
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        if data.get("presences"):
            chunk["presences"] = []
        await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _send_dispatch(self, session: _Session, event: str, data: JSON) -> None:
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            text = json.dumps(frame, ensure_ascii=False)
            session.log.append((session.seq, text))
            ws = session.ws
            if ws is not None and not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(text)  # a lost frame is replayed on RESUME
        with self._lock:
            self.gateway_sent.append(frame)
        self._bump()

    def _for_session(self, session: _Session, event: str, data: JSON) -> JSON | None:
        """The dispatch as this session gets it: filtered by intents, content stripped if needed."""
        need = _EVENT_INTENTS.get(event)
        if need is not None and not session.intents & need:
            return None
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not session.intents & INTENT_MESSAGE_CONTENT:
            author = data.get("author", {}).get("id")
            mentioned = any(m.get("id") == self.bot_user_id for m in data.get("mentions", []))
            if author != self.bot_user_id and not mentioned:
                return {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data

    async def _dispatch_message(self, event: str, msg: JSON) -> None:
        """MESSAGE_CREATE/UPDATE as the gateway sends them: with guild_id and the author's member."""
        if msg.get("flags", 0) & FLAG_EPHEMERAL:
            return
        with self._lock:
            payload = copy.deepcopy(msg)
            payload["guild_id"] = self.guild_id
            member = self._members.get(str(msg["author"]["id"]))
            if member is not None and not msg.get("webhook_id"):
                payload["member"] = {k: v for k, v in member.items() if k != "user"}
        await self.dispatch(event, payload)
