"""REST routes: channels and direct-message channels, messages, reactions and threads (a part of
FakeDiscord)."""

from __future__ import annotations

import copy
from typing import Any

from testkit.fakes.discord.records import (
    FLAG_EPHEMERAL,
    FLAG_HAS_THREAD,
    JSON,
    _HTTPError,
    _invalid,
    _now_iso,
    _Req,
    _unknown,
)
from testkit.fakes.discord.validation import _validate_message


class ChannelRoutes:
    """FakeDiscord's REST routes for channels, messages, reactions and threads."""

    # ------------------------------------------------------------------ REST: channels and messages

    def _require_channel(self, channel_id: str) -> str:
        if channel_id not in self._channels:
            raise _unknown("Channel", 10003)
        return channel_id

    def _require_message(self, channel_id: str, message_id: str) -> JSON:
        self._require_channel(channel_id)
        msg = self._messages.get(message_id)
        if msg is None or msg["channel_id"] != channel_id or msg["flags"] & FLAG_EPHEMERAL:
            raise _unknown("Message", 10008)
        return msg

    async def _r_create_dm(self, req: _Req) -> tuple[int, Any]:
        """POST /users/@me/channels {recipient_id}: the DM channel with that user (type 1), the same one each time."""
        body = req.json if isinstance(req.json, dict) else {}
        recipient = str(body.get("recipient_id") or "")
        if not recipient.isdigit():
            raise _invalid("recipient_id", f"Value \"{recipient}\" is not snowflake.")
        with self._lock:
            for channel in self._channels.values():
                if channel["type"] == 1 and channel["recipients"][0]["id"] == recipient:
                    return 200, copy.deepcopy(channel)
            user = self._users.get(recipient) or self._user_payload(recipient, f"user{recipient[-4:]}")
            cid = self.snowflake()
            self._channels[cid] = {"id": cid, "type": 1, "last_message_id": None, "flags": 0,
                                   "recipients": [copy.deepcopy(user)]}
            self._channel_messages[cid] = []
            return 200, copy.deepcopy(self._channels[cid])

    def dm_messages(self, user_id: str | int) -> list[JSON]:
        """The bot's direct messages to a user (empty when it never opened a DM with them)."""
        with self._lock:
            found = [cid for cid, c in self._channels.items()
                     if c["type"] == 1 and c["recipients"][0]["id"] == str(user_id)]
        return self.messages(found[0]) if found else []

    async def _r_get_channel(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            return 200, copy.deepcopy(self._channels[self._require_channel(req.params["channel_id"])])

    async def _r_typing(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            self._require_channel(req.params["channel_id"])
        return 204, None

    async def _r_list_messages(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            cid = self._require_channel(req.params["channel_id"])
            ids = list(self._channel_messages.get(cid, []))
            limit = max(1, min(100, int(req.query.get("limit", "50"))))
            if "before" in req.query:
                ids = [m for m in ids if int(m) < int(req.query["before"])]
            if "after" in req.query:
                ids = [m for m in ids if int(m) > int(req.query["after"])][:limit]
            return 200, [self._render_message(m) for m in reversed(ids[-limit:])]

    async def _r_get_message(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            msg = self._require_message(req.params["channel_id"], req.params["message_id"])
            return 200, self._render_message(str(msg["id"]))

    async def _r_create_message(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            cid = self._require_channel(req.params["channel_id"])
            _validate_message(body, creating=True)
            nonce = body.get("nonce")
            if nonce is not None and body.get("enforce_nonce"):
                existing = self._nonces.get((cid, str(nonce)))
                if existing is not None:
                    return 200, self._render_message(existing)
            msg = self._store_new_message(cid, self.bot_user, body)
            if nonce is not None:
                self._nonces[(cid, str(nonce))] = str(msg["id"])
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return 200, msg

    async def _r_edit_message(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            msg = self._require_message(req.params["channel_id"], req.params["message_id"])
            if msg["author"]["id"] != self.bot_user_id and set(body) - {"flags"}:
                raise _HTTPError(403, "Cannot edit a message authored by another user", 50005)
            _validate_message(body, creating=False)
            self._apply_edit(msg, body)
            rendered = self._render_message(str(msg["id"]))
        await self._dispatch_message("MESSAGE_UPDATE", rendered)
        return 200, rendered

    async def _r_delete_message(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            msg = self._require_message(req.params["channel_id"], req.params["message_id"])
            self._delete_message(str(msg["id"]))
        await self.dispatch(
            "MESSAGE_DELETE", {"id": msg["id"], "channel_id": msg["channel_id"], "guild_id": self.guild_id}
        )
        return 204, None

    # ------------------------------------------------------------------ REST: reactions

    async def _r_add_own_reaction(self, req: _Req) -> tuple[int, Any]:
        cid, mid, emoji = req.params["channel_id"], req.params["message_id"], req.params["emoji"]
        with self._lock:
            self._require_message(cid, mid)
            users = self._reactions.setdefault(mid, {}).setdefault(emoji, [])
            if self.bot_user_id in users:
                return 204, None
            users.append(self.bot_user_id)
            event = self._reaction_event(self.bot_user_id, cid, mid, emoji, with_member=True)
        await self.dispatch("MESSAGE_REACTION_ADD", event)
        return 204, None

    async def _r_remove_own_reaction(self, req: _Req) -> tuple[int, Any]:
        return await self._remove_reaction(req, self.bot_user_id)

    async def _r_remove_user_reaction(self, req: _Req) -> tuple[int, Any]:
        return await self._remove_reaction(req, req.params["user_id"])

    async def _remove_reaction(self, req: _Req, user_id: str) -> tuple[int, Any]:
        cid, mid, emoji = req.params["channel_id"], req.params["message_id"], req.params["emoji"]
        with self._lock:
            self._require_message(cid, mid)
            users = self._reactions.get(mid, {}).get(emoji, [])
            if user_id not in users:
                return 204, None
            users.remove(user_id)
            event = self._reaction_event(user_id, cid, mid, emoji, with_member=False)
        await self.dispatch("MESSAGE_REACTION_REMOVE", event)
        return 204, None

    async def _r_get_reactions(self, req: _Req) -> tuple[int, Any]:
        cid, mid, emoji = req.params["channel_id"], req.params["message_id"], req.params["emoji"]
        with self._lock:
            self._require_message(cid, mid)
            users = self._reactions.get(mid, {}).get(emoji, [])
            return 200, [copy.deepcopy(self._users[u]) for u in users if u in self._users]

    # ------------------------------------------------------------------ REST: threads

    async def _r_thread_from_message(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            cid, mid = req.params["channel_id"], req.params["message_id"]
            msg = self._require_message(cid, mid)
            if self._channels[cid]["type"] in (10, 11, 12):
                raise _HTTPError(400, "Cannot execute action on this channel type", 50024)
            if mid in self.threads:
                raise _HTTPError(400, "A thread has already been created for this message", 160004)
            thread = self._new_thread(mid, cid, body, 11)
            self.threads[mid] = mid
            msg["flags"] |= FLAG_HAS_THREAD
            msg["thread"] = thread
            payload = copy.deepcopy(thread)
        await self.dispatch("THREAD_CREATE", {**payload, "newly_created": True})
        return 201, payload

    async def _r_thread_without_message(self, req: _Req) -> tuple[int, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            cid = self._require_channel(req.params["channel_id"])
            kind = int(body.get("type", 12))
            if kind not in (11, 12):
                raise _invalid("type", "Value must be one of {11, 12}.")
            thread = self._new_thread(self.snowflake(), cid, body, kind)
            payload = copy.deepcopy(thread)
        await self.dispatch("THREAD_CREATE", {**payload, "newly_created": True})
        return 201, payload

    async def _r_join_thread(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            cid = self._require_channel(req.params["channel_id"])
            if self._channels[cid]["type"] not in (10, 11, 12):
                raise _HTTPError(400, "Cannot execute action on this channel type", 50024)
        return 204, None

    def _new_thread(self, thread_id: str, parent_id: str, body: JSON, kind: int) -> JSON:
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise _invalid("name", "Must be between 1 and 100 in length.", "BASE_TYPE_BAD_LENGTH")
        now = _now_iso()
        thread: JSON = {
            "id": thread_id,
            "type": kind,
            "guild_id": self.guild_id,
            "parent_id": parent_id,
            "owner_id": self.bot_user_id,
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": int(body.get("rate_limit_per_user") or 0),
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": int(body.get("auto_archive_duration") or 1440),
                "archive_timestamp": now,
                "locked": False,
                "create_timestamp": now,
            },
            "member": {"id": thread_id, "user_id": self.bot_user_id, "join_timestamp": now, "flags": 0},
        }
        self._channels[thread_id] = thread
        self._channel_messages[thread_id] = []
        return thread
