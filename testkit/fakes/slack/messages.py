"""The fake Slack's message store: users as messages show them, the bot's messages, threads, lookups (a
part of FakeSlack)."""

from __future__ import annotations

from testkit.fakes.slack.records import JSONDict


class MessageStore:
    """FakeSlack's message store."""

    # ------------------------------------------------------------------ internals: message store

    def _user_record(
        self, user_id: str, name: str, *, real_name: str | None = None, is_bot: bool = False
    ) -> JSONDict:
        real = real_name or name
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": real,
            "deleted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "tz": "Etc/UTC",
            "profile": {"real_name": real, "display_name": name, "team": self.team_id},
        }

    def _bot_message(self, text: str | None, blocks: list[JSONDict] | None) -> JSONDict:
        msg: JSONDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text or "",
            "ts": self.next_ts(),
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": "signoff",
                "team_id": self.team_id,
            },
        }
        if blocks is not None:
            msg["blocks"] = blocks
        return msg

    def _store_message(self, channel: str, msg: JSONDict, thread_ts: str | None) -> None:
        """Append ``msg``; a reply also marks its parent as a thread root, as Slack does."""
        if thread_ts:
            msg["thread_ts"] = thread_ts
            parent = self._find(channel, thread_ts)
            if parent is not None and parent is not msg:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = int(parent.get("reply_count", 0)) + 1
                users = parent.setdefault("reply_users", [])
                if msg.get("user") not in users:
                    users.append(msg.get("user"))
                parent["latest_reply"] = msg["ts"]
                msg.setdefault("parent_user_id", parent.get("user"))
        self._messages.setdefault(channel, []).append(msg)

    def _find(self, channel: str, ts: str) -> JSONDict | None:
        for msg in self._messages.get(channel, []):
            if msg["ts"] == ts:
                return msg
        return None
