"""FakeDiscord: one seeded guild on 127.0.0.1, its state, seeding and inspection; and `point_discord_py_at`.

Each other job is a part of the class in its own module (see the package's docstring)."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import yarl
from aiohttp import web

from testkit.fakes.discord.driving import Driving
from testkit.fakes.discord.faults import Faults
from testkit.fakes.discord.gateway import Gateway
from testkit.fakes.discord.messages import MessageStore
from testkit.fakes.discord.payloads import Payloads
from testkit.fakes.discord.records import (
    API_PREFIX,
    DISCORD_EPOCH_MS,
    JSON,
    PERMS_BOT,
    PERMS_EVERYONE,
    DiscordCall,
    GatewayFrame,
    InteractionReply,
    _Conn,
    _Interaction,
    _now_iso,
    _on_fake_loop,
    _Session,
)
from testkit.fakes.discord.rest import RestPlumbing
from testkit.fakes.discord.routes_channels import ChannelRoutes
from testkit.fakes.discord.routes_guild import GuildRoutes
from testkit.fakes.discord.routes_interactions import InteractionRoutes
from testkit.support.loopback import LoopbackServer


def point_discord_py_at(fake: FakeDiscord) -> _Pointing:
    """Redirect discord.py's REST base and default gateway to ``fake`` until restored.

    Applies at once; use it as a context manager (or call ``.restore()``) to put the old values back.
    """
    return _Pointing(fake.api_url, fake.gateway_url)


class _Pointing:
    def __init__(self, api_url: str, gateway_url: str) -> None:
        import discord.gateway
        import discord.http

        self._route = discord.http.Route
        self._ws = discord.gateway.DiscordWebSocket
        self._old_base = self._route.BASE
        self._old_gateway = self._ws.DEFAULT_GATEWAY
        self._route.BASE = api_url
        self._ws.DEFAULT_GATEWAY = yarl.URL(gateway_url)
        self._restored = False

    def restore(self) -> None:
        if not self._restored:
            self._route.BASE = self._old_base
            self._ws.DEFAULT_GATEWAY = self._old_gateway
            self._restored = True

    def __enter__(self) -> _Pointing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()


class FakeDiscord(
    Driving, Faults, RestPlumbing, GuildRoutes, ChannelRoutes, InteractionRoutes, Gateway, Payloads, MessageStore,
    LoopbackServer,
):
    """Discord on 127.0.0.1: REST under ``/api/v10`` and the gateway at ``/gateway``, one seeded guild."""

    thread_name = "fake-discord"
    poll_interval = 0.05  # a wait's predicate may look at the client's state, which the fake does not see change

    def __init__(
        self,
        *,
        token: str = "signoff-fake-bot-token",
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval_ms: int = 41250,
        interaction_deadline: float | None = 3.0,
        privileged_intents_allowed: bool = True,
        hang_seconds: float = 10.0,
        guild_name: str = "signoff-test",
        channel_name: str = "ops",
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # Discord drops interactions not answered within 3 s; None disables the check.
        self.interaction_deadline = interaction_deadline
        # False models a bot whose privileged intents are not enabled in the developer portal.
        self.privileged_intents_allowed = privileged_intents_allowed
        # How long a "timeout" fault holds a request before answering 504.
        self.hang_seconds = hang_seconds

        self._last_snowflake = 0
        self.calls: list[DiscordCall] = []
        self.gateway_received: list[GatewayFrame] = []
        self.gateway_sent: list[JSON] = []
        self.gateway_connects: list[dict[str, str]] = []  # query of every websocket connect
        self.identifies: list[JSON] = []
        self.ready_count = 0  # READY + RESUMED sent
        self.interactions: dict[str, JSON] = {}

        self.application_id = self.snowflake()
        self.bot_user: JSON = {
            **self._user_payload(self.application_id, "signoff", bot=True),
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "flags": 0,
        }
        self.bot_user_id: str = self.application_id  # Discord bots share their application's id
        self.owner_id = self.snowflake()
        self.guild_id = self.snowflake()
        self._users: dict[str, JSON] = {
            self.bot_user_id: self.bot_user,
            self.owner_id: self._user_payload(self.owner_id, "owner"),
        }
        self._roles: list[JSON] = [self._role_payload(self.guild_id, "@everyone", 0, PERMS_EVERYONE)]
        self.bot_role_id = self.add_role("signoff", permissions=PERMS_BOT, managed=True)
        self.guild_name = guild_name
        self._guild_joined_at = _now_iso()
        self._members: dict[str, JSON] = {}
        self._channels: dict[str, JSON] = {}
        self._channel_order: list[str] = []
        self._messages: dict[str, JSON] = {}
        self._channel_messages: dict[str, list[str]] = {}
        self._reactions: dict[str, dict[str, list[str]]] = {}
        self._nonces: dict[tuple[str, str], str] = {}
        self.threads: dict[str, str] = {}  # thread channel id by parent (starter) message id
        self._global_commands: list[JSON] = []
        self._guild_commands: dict[str, list[JSON]] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._by_token: dict[str, _Interaction] = {}
        self._sessions: dict[str, _Session] = {}
        self._conns: list[_Conn] = []
        self._members[self.bot_user_id] = self._member_payload(self.bot_user_id, [self.bot_role_id])
        self.channel_id = self.add_channel(channel_name)
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/gateway", self._handle_gateway)
        app.router.add_get("/gateway/", self._handle_gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._handle_rest)

    async def _closing(self) -> None:
        await self.disconnect_clients(code=1001)

    def _recent(self) -> list[str]:
        return [f"{c.method} {c.path} -> {c.status}" for c in self.calls[-15:]]

    @property
    def api_url(self) -> str:
        """REST base, the value for ``discord.http.Route.BASE`` / ``DISCORD_API_URL``."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Gateway URL, the value for ``DiscordWebSocket.DEFAULT_GATEWAY`` / ``DISCORD_GATEWAY_URL``."""
        return f"ws://{self.host}:{self.port}/gateway"

    # ------------------------------------------------------------------ seeding

    def snowflake(self) -> str:
        """A new Discord-style id (timestamp << 22), strictly increasing, as a string."""
        with self._lock:
            value = max((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22, self._last_snowflake + 1)
            self._last_snowflake = value
            return str(value)

    def add_role(self, name: str, *, permissions: int = PERMS_EVERYONE, managed: bool = False) -> str:
        """Add a guild role (seed before clients connect: no GUILD_ROLE_CREATE is sent)."""
        with self._lock:
            role_id = self.snowflake()
            role = self._role_payload(role_id, name, len(self._roles), permissions)
            if managed:
                role["managed"] = True
                role["tags"] = {"bot_id": self.bot_user_id}
            self._roles.append(role)
            return role_id

    def role_id(self, name: str) -> str:
        with self._lock:
            for role in self._roles:
                if role["name"] == name:
                    return str(role["id"])
        raise KeyError(name)

    def add_channel(self, name: str) -> str:
        """Add a text channel (seed before clients connect: no CHANNEL_CREATE is sent)."""
        with self._lock:
            cid = self.snowflake()
            self._channels[cid] = {
                "id": cid,
                "type": 0,
                "guild_id": self.guild_id,
                "name": name,
                "position": len(self._channel_order),
                "permission_overwrites": [],
                "parent_id": None,
                "nsfw": False,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "flags": 0,
                "default_auto_archive_duration": 1440,
            }
            self._channel_order.append(cid)
            self._channel_messages[cid] = []
            return cid

    def add_member(self, user_id: str | int, username: str, roles: Sequence[str] = ()) -> JSON:
        """Make ``user_id`` a guild member; ``roles`` are role names or ids. Returns the member payload.

        Seed members before the client connects (they are in GUILD_CREATE); use ``member_join`` to
        also dispatch GUILD_MEMBER_ADD to connected clients.
        """
        uid = str(user_id)
        with self._lock:
            role_ids = [r if r.isdigit() else self.role_id(r) for r in roles]
            self._users[uid] = self._user_payload(uid, username)
            member = self._member_payload(uid, role_ids)
            self._members[uid] = member
            return copy.deepcopy(member)

    @_on_fake_loop
    async def member_join(self, user_id: str | int, username: str, roles: Sequence[str] = ()) -> JSON:
        """``add_member`` plus a GUILD_MEMBER_ADD dispatch (members intent only, as on Discord)."""
        member = self.add_member(user_id, username, roles)
        await self.dispatch("GUILD_MEMBER_ADD", {**member, "guild_id": self.guild_id})
        return member

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str, path_regex: str) -> list[DiscordCall]:
        """Calls whose method matches (``"*"`` for any) and whose path fully matches ``path_regex``."""
        pattern = re.compile(path_regex)
        with self._lock:
            return [
                c for c in self.calls if method in ("*", c.method) and pattern.fullmatch(c.path) is not None
            ]

    def mark(self) -> int:
        """A position in ``calls``; pass it as ``since=`` to look only at later calls."""
        with self._lock:
            return len(self.calls)

    def messages(self, channel_id: str | int | None = None) -> list[JSON]:
        """Current (edited) non-ephemeral messages of a channel or thread, oldest first."""
        cid = str(channel_id or self.channel_id)
        with self._lock:
            return [self._render_message(mid) for mid in self._channel_messages.get(cid, [])]

    def message(self, message_id: str | int) -> JSON:
        """A stored message by id, ephemeral ones included; KeyError when unknown."""
        with self._lock:
            if str(message_id) not in self._messages:
                raise KeyError(str(message_id))
            return self._render_message(str(message_id))

    def thread_messages(self, thread_id: str | int) -> list[JSON]:
        return self.messages(thread_id)

    def channel(self, channel_id: str | int) -> JSON:
        with self._lock:
            return copy.deepcopy(self._channels[str(channel_id)])

    def interaction_responses(self, interaction_id: str | int) -> list[InteractionReply]:
        """The callback, follow-ups and edits for one interaction, in arrival order."""
        with self._lock:
            rec = self._interactions.get(str(interaction_id))
            return list(rec.replies) if rec else []

    def commands(self, guild_id: str | int | None = None) -> list[JSON]:
        """Registered application commands: global ones, or a guild's."""
        with self._lock:
            stored = (
                self._global_commands if guild_id is None else self._guild_commands.get(str(guild_id), [])
            )
            return copy.deepcopy(stored)

    @property
    def intents(self) -> int | None:
        """The intents of the latest IDENTIFY."""
        with self._lock:
            return int(self.identifies[-1].get("intents", 0)) if self.identifies else None

    @property
    def connected_sessions(self) -> int:
        with self._lock:
            return sum(1 for s in self._sessions.values() if s.ws is not None and not s.ws.closed)

    @_on_fake_loop
    async def wait_for(
        self,
        what: Callable[[], Any] | tuple[str, str] | str,
        timeout: float = 5.0,
        *,
        count: int = 1,
        since: int = 0,
    ) -> Any:
        """Wait until a condition holds, re-checked on every change of the fake's state and every 50 ms.

        ``what`` is a predicate (its first truthy result is returned), or ``(method, path_regex)`` /
        ``"METHOD path_regex"``: then the ``count``-th successful matching call after ``since`` is
        returned.
        """
        if callable(what):
            return await self._wait_until(what, timeout, getattr(what, "__name__", "condition"))
        method, regex = what if isinstance(what, tuple) else what.split(" ", 1)
        pattern = re.compile(regex)

        def matching_call() -> DiscordCall | None:
            found = [
                c
                for c in self.calls[since:]
                if method in ("*", c.method) and not c.failed and pattern.fullmatch(c.path)
            ]
            return found[count - 1] if len(found) >= count else None

        return await self._wait_until(matching_call, timeout, f"{count} x {method} {regex}")

    @_on_fake_loop
    async def wait_ready(self, timeout: float = 5.0, *, count: int | None = None) -> int:
        """Wait for a connected, identified (or resumed) client; with ``count``, for that many
        READY/RESUMED sent in total. Returns the total."""

        def check() -> int | None:
            if count is not None:
                return self.ready_count if self.ready_count >= count else None
            return self.ready_count if self.connected_sessions else None

        result: int = await self._wait_until(check, timeout, "gateway client ready")
        return result
