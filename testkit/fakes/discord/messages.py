"""The fake Discord's message store: new messages (nonces, mentions, threads), edits, deletes, how a
message renders, and reaction events (a part of FakeDiscord)."""

from __future__ import annotations

import copy

from testkit.fakes.discord.records import _MENTION_RE, FLAG_EPHEMERAL, JSON, _Interaction, _now_iso
from testkit.fakes.discord.validation import _emoji_payload, _normalise_embeds, _number_components


class MessageStore:
    """FakeDiscord's message store."""

    def _store_new_message(
        self,
        channel_id: str,
        author: JSON,
        body: JSON,
        *,
        msg_type: int = 0,
        interaction: _Interaction | None = None,
    ) -> JSON:
        """Create and store a message (ephemeral ones are kept out of the channel's list)."""
        mid = self.snowflake()
        content = str(body.get("content") or "")
        msg: JSON = {
            "id": mid,
            "channel_id": channel_id,
            "type": msg_type,
            "author": copy.deepcopy(author),
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": False,
            "mentions": [
                copy.deepcopy(self._users[u]) for u in _MENTION_RE.findall(content) if u in self._users
            ],
            "mention_roles": [],
            "attachments": [
                {"id": self.snowflake(), "filename": f, "size": 0, "url": "", "proxy_url": ""}
                for f in body.get("_files", [])
            ],
            "embeds": _normalise_embeds(body.get("embeds") or []),
            "components": _number_components(copy.deepcopy(body.get("components") or [])),
            "pinned": False,
            "flags": int(body.get("flags") or 0),
        }
        if body.get("nonce") is not None:
            msg["nonce"] = body["nonce"]
        if interaction is not None:
            msg["webhook_id"] = self.application_id
            msg["application_id"] = self.application_id
            user = interaction.payload["member"]["user"]
            msg["interaction_metadata"] = {
                "id": interaction.id,
                "type": interaction.type,
                "user": copy.deepcopy(user),
                "authorizing_integration_owners": {"0": self.guild_id},
            }
            if interaction.type == 3 and interaction.message_id is not None:
                msg["interaction_metadata"]["interacted_message_id"] = interaction.message_id
        self._messages[mid] = msg
        if not msg["flags"] & FLAG_EPHEMERAL:
            self._channel_messages.setdefault(channel_id, []).append(mid)
            channel = self._channels[channel_id]
            channel["last_message_id"] = mid
            if channel["type"] in (10, 11, 12):
                channel["message_count"] += 1
                channel["total_message_sent"] += 1
        self._bump()
        return self._render_message(mid)

    def _apply_edit(self, msg: JSON, body: JSON) -> None:
        if "content" in body:
            msg["content"] = str(body["content"] or "")
        if "embeds" in body:
            msg["embeds"] = _normalise_embeds(body["embeds"] or [])
        if "components" in body:
            msg["components"] = _number_components(copy.deepcopy(body["components"] or []))
        if "attachments" in body and body["attachments"] is not None:
            keep = {str(a.get("id")) for a in body["attachments"]}
            msg["attachments"] = [a for a in msg["attachments"] if str(a["id"]) in keep]
        if "flags" in body and body["flags"] is not None:
            suppress = 1 << 2  # only SUPPRESS_EMBEDS may be changed by an edit
            msg["flags"] = (msg["flags"] & ~suppress) | (int(body["flags"]) & suppress)
        msg["edited_timestamp"] = _now_iso()
        self._bump()

    def _delete_message(self, mid: str) -> None:
        msg = self._messages.pop(mid)
        ids = self._channel_messages.get(str(msg["channel_id"]), [])
        if mid in ids:
            ids.remove(mid)
        self._reactions.pop(mid, None)
        self._bump()

    def _render_message(self, mid: str) -> JSON:
        """A stored message as Discord returns it, with its reactions counted for the bot."""
        msg = copy.deepcopy(self._messages[mid])
        reactions = [
            {
                "emoji": _emoji_payload(emoji),
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "burst_colors": [],
                "me": self.bot_user_id in users,
                "me_burst": False,
                "burst_me": False,
                "burst_count": 0,
            }
            for emoji, users in self._reactions.get(mid, {}).items()
            if users
        ]
        if reactions:
            msg["reactions"] = reactions
        return msg

    def _reaction_event(
        self, user_id: str, channel_id: str, message_id: str, emoji: str, *, with_member: bool
    ) -> JSON:
        event: JSON = {
            "user_id": user_id,
            "channel_id": channel_id,
            "message_id": message_id,
            "guild_id": self.guild_id,
            "emoji": _emoji_payload(emoji),
            "burst": False,
            "type": 0,
        }
        if with_member:
            event["burst_colors"] = []
            event["message_author_id"] = self._messages[message_id]["author"]["id"]
            if user_id in self._members:
                event["member"] = copy.deepcopy(self._members[user_id])
        return event
