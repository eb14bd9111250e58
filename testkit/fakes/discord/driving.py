"""Driving the client as people do: slash commands, button clicks, modals, messages and reactions, each
sent over the gateway as Discord would (a part of FakeDiscord)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Mapping, Sequence
from typing import Any

from testkit.fakes.discord.records import JSON, _on_fake_loop
from testkit.fakes.discord.validation import _find_component


class Driving:
    """FakeDiscord's part that drives the client as people and Discord would, over the gateway."""

    # ------------------------------------------------------------------ gateway-driven helpers

    @_on_fake_loop
    async def disconnect_clients(self, code: int = 4000) -> int:
        """Close every gateway connection from the server side (sessions stay resumable)."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.server_closed = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=code), 2.0)
        return len(conns)

    @_on_fake_loop
    async def invalidate_sessions(self) -> None:
        """Forget all sessions: the next RESUME gets INVALID_SESSION and the client re-IDENTIFYs."""
        with self._lock:
            for session in self._sessions.values():
                session.alive = False

    @_on_fake_loop
    async def dispatch(self, event: str, data: JSON) -> JSON:
        """Send a raw dispatch to every live session that wants it (intents, content stripping)."""
        with self._lock:
            sessions = [s for s in self._sessions.values() if s.alive]
        for session in sessions:
            payload = self._for_session(session, event, data)
            if payload is not None:
                await self._send_dispatch(session, event, payload)
        return data

    @_on_fake_loop
    async def slash_command(
        self,
        user_id: str | int,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        subcommand: str | None = None,
        channel_id: str | int | None = None,
    ) -> JSON:
        """Dispatch an application command (INTERACTION_CREATE type 2); returns the payload.

        ``subcommand`` may be ``"sub"`` or ``"group sub"``. Option types come from the registered
        command when there is one (unknown or missing required options raise ``ValueError``), else
        from the Python values.
        """
        with self._lock:
            cid = str(channel_id or self.channel_id)
            command, guild_id = self._find_command(name)
            path = subcommand.split() if subcommand else []
            schema = command.get("options", []) if command else None
            nested = self._build_options(name, path, options, schema)
            data: JSON = {"id": command["id"] if command else self.snowflake(), "name": name, "type": 1}
            if nested:
                data["options"] = nested
            if guild_id is not None:
                data["guild_id"] = guild_id
            payload = self._interaction_payload(2, user_id, cid)
            payload["data"] = data
            self._remember_interaction(payload, cid, None)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    @_on_fake_loop
    async def click(
        self,
        user_id: str | int,
        message_id: str | int,
        custom_id: str,
        *,
        component_type: int = 2,
        values: Sequence[str] | None = None,
    ) -> JSON:
        """Dispatch a component click (INTERACTION_CREATE type 3) on a stored message.

        Raises ``ValueError`` when the message has no component with that ``custom_id``: Discord
        cannot produce such a click, and discord.py would drop it silently anyway.
        """
        with self._lock:
            mid = str(message_id)
            if mid not in self._messages:
                raise KeyError(f"unknown message {mid}")
            message = self._render_message(mid)
            component = _find_component(message.get("components", []), custom_id)
            if component is None:
                raise ValueError(f"message {mid} has no component with custom_id {custom_id!r}")
            payload = self._interaction_payload(3, user_id, str(message["channel_id"]))
            data: JSON = {"custom_id": custom_id, "component_type": component_type}
            if "id" in component:
                data["id"] = component["id"]
            if values is not None:
                data["values"] = list(values)
            payload["data"] = data
            payload["message"] = message
            self._remember_interaction(payload, str(message["channel_id"]), mid)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    def modal(self, interaction_id: str | int) -> JSON:
        """The modal an interaction was answered with (callback type 9); KeyError when there is none."""
        with self._lock:
            rec = self._interactions.get(str(interaction_id))
            if rec is None or rec.modal is None:
                raise KeyError(f"interaction {interaction_id} was not answered with a modal")
            return copy.deepcopy(rec.modal)

    @_on_fake_loop
    async def submit_modal(
        self,
        interaction_id: str | int,
        values: Mapping[str, str],
        *,
        user_id: str | int | None = None,
        crafted: bool = False,
    ) -> JSON:
        """The person submits the modal opened in answer to ``interaction_id``: INTERACTION_CREATE type 5.

        ``values`` maps each text input's ``custom_id`` to what was typed. Like Discord's client, the
        fake refuses (``ValueError``) a value longer than the input's ``max_length``, a missing required
        one, a second submission, and a submission by someone other than the person who opened it
        (``user_id`` defaults to them), unless ``crafted=True``: a hand-made request checked by nobody.
        """
        with self._lock:
            rec = self._interactions.get(str(interaction_id))
            if rec is None or rec.modal is None:
                raise KeyError(f"interaction {interaction_id} was not answered with a modal")
            opener = str(rec.payload.get("member", {}).get("user", {}).get("id", ""))
            uid = str(user_id) if user_id is not None else opener
            if not crafted and rec.submitted:
                raise ValueError(f"the modal of interaction {interaction_id} was already submitted")
            if not crafted and uid != opener:
                raise ValueError("only the person who opened a modal can submit it")
            rows: list[JSON] = []
            for row in rec.modal.get("components", []):
                inputs: list[JSON] = []
                for text_input in row.get("components", []):
                    cid = text_input["custom_id"]
                    value = str(values.get(cid, ""))
                    if not crafted:
                        if text_input.get("required", True) and not value:
                            raise ValueError(f"the required input {cid!r} is empty")
                        if len(value) > int(text_input.get("max_length", 4000)):
                            raise ValueError(f"{cid!r} is longer than its max_length")
                    inputs.append({"type": 4, "custom_id": cid, "value": value})
                rows.append({"type": 1, "components": inputs})
            payload = self._interaction_payload(5, uid, rec.channel_id)
            payload["data"] = {"custom_id": rec.modal["custom_id"], "components": rows}
            if rec.message_id is not None and rec.message_id in self._messages:
                payload["message"] = self._render_message(rec.message_id)
            rec.submitted = True
            self._remember_interaction(payload, rec.channel_id, rec.message_id)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    @_on_fake_loop
    async def post_user_message(self, user_id: str | int, channel_id: str | int, content: str) -> JSON:
        """A member posts in a channel or thread: stored, and MESSAGE_CREATE dispatched.

        Content reaches only clients with the message-content intent (unless it mentions the bot).
        """
        uid = str(user_id)
        with self._lock:
            cid = self._require_channel(str(channel_id))
            if uid not in self._members:
                raise KeyError(f"user {uid} is not a member: add_member() first")
            msg = self._store_new_message(cid, self._users[uid], {"content": content})
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return msg

    @_on_fake_loop
    async def add_reaction(
        self, user_id: str | int, channel_id: str | int, message_id: str | int, emoji: str
    ) -> JSON:
        """A member reacts (unicode emoji such as "✅"): MESSAGE_REACTION_ADD is dispatched."""
        uid, cid, mid = str(user_id), str(channel_id), str(message_id)
        with self._lock:
            self._require_message(cid, mid)
            users = self._reactions.setdefault(mid, {}).setdefault(emoji, [])
            if uid not in users:
                users.append(uid)
            payload = self._reaction_event(uid, cid, mid, emoji, with_member=True)
        await self.dispatch("MESSAGE_REACTION_ADD", payload)
        return payload

    @_on_fake_loop
    async def remove_reaction(
        self, user_id: str | int, channel_id: str | int, message_id: str | int, emoji: str
    ) -> JSON:
        uid, cid, mid = str(user_id), str(channel_id), str(message_id)
        with self._lock:
            self._require_message(cid, mid)
            users = self._reactions.get(mid, {}).get(emoji, [])
            if uid in users:
                users.remove(uid)
            payload = self._reaction_event(uid, cid, mid, emoji, with_member=False)
        await self.dispatch("MESSAGE_REACTION_REMOVE", payload)
        return payload
