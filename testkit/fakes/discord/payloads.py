"""Discord's objects as the fake sends them: users, roles, members, permissions, the guild, interactions
and their options (a part of FakeDiscord)."""

from __future__ import annotations

import copy
import functools
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from testkit.fakes.discord.records import INTENT_GUILD_MEMBERS, JSON, PERMS_ALL, _Interaction, _now_iso
from testkit.fakes.discord.validation import _option_type


class Payloads:
    """FakeDiscord's builders of Discord's objects."""

    # ------------------------------------------------------------------ payload builders

    def _user_payload(self, user_id: str, username: str, *, bot: bool = False) -> JSON:
        user: JSON = {
            "id": user_id,
            "username": username,
            "discriminator": "0",
            "global_name": None if bot else username,
            "avatar": None,
            "public_flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
        }
        if bot:
            user["bot"] = True
        return user

    def _role_payload(self, role_id: str, name: str, position: int, permissions: int) -> JSON:
        return {
            "id": role_id,
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _member_payload(self, user_id: str, role_ids: Sequence[str]) -> JSON:
        return {
            "user": copy.deepcopy(self._users[user_id]),
            "roles": list(role_ids),
            "joined_at": _now_iso(),
            "nick": None,
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }

    def _member_permissions(self, user_id: str) -> int:
        member = self._members.get(user_id)
        if member is None:
            return 0
        if user_id == self.owner_id:
            return PERMS_ALL
        roles = {r["id"]: int(r["permissions"]) for r in self._roles}
        return functools.reduce(
            lambda acc, rid: acc | roles.get(rid, 0), member["roles"], roles[self.guild_id]
        )

    def _guild_payload(self, *, gateway: bool, intents: int = 0) -> JSON:
        guild: JSON = {
            "id": self.guild_id,
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self.owner_id,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": copy.deepcopy(self._roles),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": self.channel_id,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
        }
        if not gateway:
            return guild
        members = [copy.deepcopy(m) for m in self._members.values()]
        if not intents & INTENT_GUILD_MEMBERS:  # Discord then sends only the bot's own member
            members = [m for m in members if m["user"]["id"] == self.bot_user_id]
        return {
            **guild,
            "unavailable": False,
            "joined_at": self._guild_joined_at,
            "large": False,
            "member_count": len(members),
            "members": members,
            "channels": [
                {k: v for k, v in self._channels[c].items() if k != "guild_id"} for c in self._channel_order
            ],
            "threads": [
                copy.deepcopy(c)
                for c in self._channels.values()
                if c["type"] in (10, 11, 12) and not c["thread_metadata"]["archived"]
            ],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "application_command_counts": {},
        }

    def _interaction_payload(self, itype: int, user_id: str | int, channel_id: str) -> JSON:
        uid = str(user_id)
        if uid not in self._members:
            raise KeyError(f"user {uid} is not a member: add_member() first")
        self._require_channel(channel_id)
        member = {**copy.deepcopy(self._members[uid]), "permissions": str(self._member_permissions(uid))}
        channel = {**copy.deepcopy(self._channels[channel_id]), "permissions": member["permissions"]}
        return {
            "id": self.snowflake(),
            "application_id": self.application_id,
            "type": itype,
            "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            "version": 1,
            "guild_id": self.guild_id,
            "guild": {"id": self.guild_id, "locale": "en-US", "features": []},
            "guild_locale": "en-US",
            "channel_id": channel_id,
            "channel": channel,
            "member": member,
            "locale": "en-US",
            "app_permissions": str(self._member_permissions(self.bot_user_id)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": self.guild_id},
            "context": 0,
            "attachment_size_limit": 10_485_760,
        }

    def _remember_interaction(self, payload: JSON, channel_id: str, message_id: str | None) -> None:
        rec = _Interaction(
            str(payload["id"]),
            str(payload["token"]),
            int(payload["type"]),
            payload,
            channel_id,
            time.monotonic(),
            message_id=message_id,
        )
        self._interactions[rec.id] = rec
        self._by_token[rec.token] = rec
        self.interactions[rec.id] = payload

    def _find_command(self, name: str) -> tuple[JSON | None, str | None]:
        for command in self._guild_commands.get(self.guild_id, []):
            if command["name"] == name and command["type"] == 1:
                return command, self.guild_id
        for command in self._global_commands:
            if command["name"] == name and command["type"] == 1:
                return command, None
        return None, self.guild_id  # unregistered: guild_id lets a guild or global tree command match

    def _build_options(
        self,
        name: str,
        path: list[str],
        options: Mapping[str, Any] | Sequence[JSON] | None,
        schema: list[JSON] | None,
    ) -> list[JSON]:
        if path:
            sub = path[0]
            sub_schema: list[JSON] | None = None
            kind = 1 if len(path) == 1 else 2
            if schema is not None:
                found = next((o for o in schema if o.get("name") == sub and o.get("type") in (1, 2)), None)
                if found is None:
                    raise ValueError(f"/{name} has no subcommand {sub!r}")
                kind = int(found["type"])
                sub_schema = found.get("options", [])
            inner = self._build_options(f"{name} {sub}", path[1:], options, sub_schema)
            entry: JSON = {"type": kind, "name": sub}
            if inner or kind in (1, 2):
                entry["options"] = inner
            return [entry]
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            return [dict(o) for o in options]
        declared = {o["name"]: o for o in schema or [] if int(o.get("type", 3)) not in (1, 2)}
        out: list[JSON] = []
        for key, value in options.items():
            if schema is not None and key not in declared:
                raise ValueError(f"/{name} has no option {key!r} (declared: {sorted(declared)})")
            kind = int(declared[key]["type"]) if key in declared else _option_type(value)
            out.append({"name": key, "type": kind, "value": value})
        missing = [k for k, o in declared.items() if o.get("required") and k not in options]
        if missing:
            raise ValueError(f"/{name} is missing required options {missing}")
        return out
