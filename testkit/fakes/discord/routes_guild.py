"""REST routes: the bot user, users, the application, the gateway URL, the guild, its channels, roles and
members (a part of FakeDiscord)."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from testkit.fakes.discord.records import _Req, _unknown


class GuildRoutes:
    """FakeDiscord's REST routes for users, the application, the gateway and the guild."""

    # ------------------------------------------------------------------ REST: users, app, gateway

    async def _r_get_me(self, req: _Req) -> tuple[int, Any]:
        return 200, copy.deepcopy(self.bot_user)

    async def _r_get_user(self, req: _Req) -> tuple[int, Any]:
        with self._lock:
            user = self._users.get(req.params["user_id"])
            if user is None:
                raise _unknown("User", 10013)
            return 200, copy.deepcopy(user)

    async def _r_get_application(self, req: _Req) -> tuple[int, Any]:
        return 200, {
            "id": self.application_id,
            "name": "signoff",
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": hashlib.sha256(self.application_id.encode()).hexdigest(),
            "flags": (1 << 15) | (1 << 19) | (1 << 23),  # members / message content limited, cmd badge
            "owner": copy.deepcopy(self._users[self.owner_id]),
            "team": None,
            "bot": copy.deepcopy(self.bot_user),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": 1,
        }

    async def _r_get_gateway(self, req: _Req) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _r_get_gateway_bot(self, req: _Req) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    # ------------------------------------------------------------------ REST: guild

    def _require_guild(self, guild_id: str) -> None:
        if guild_id != self.guild_id:
            raise _unknown("Guild", 10004)

    async def _r_get_guild(self, req: _Req) -> tuple[int, Any]:
        self._require_guild(req.params["guild_id"])
        with self._lock:
            return 200, self._guild_payload(gateway=False)

    async def _r_get_guild_channels(self, req: _Req) -> tuple[int, Any]:
        self._require_guild(req.params["guild_id"])
        with self._lock:
            return 200, [copy.deepcopy(self._channels[c]) for c in self._channel_order]

    async def _r_get_roles(self, req: _Req) -> tuple[int, Any]:
        self._require_guild(req.params["guild_id"])
        with self._lock:
            return 200, copy.deepcopy(self._roles)

    async def _r_get_member(self, req: _Req) -> tuple[int, Any]:
        self._require_guild(req.params["guild_id"])
        with self._lock:
            member = self._members.get(req.params["user_id"])
            if member is None:
                raise _unknown("Member", 10007)
            return 200, copy.deepcopy(member)
