"""The fake Discord's constants (API prefix, intents, flags, permissions), the records tests read
(calls, gateway frames, interaction replies) and its internal records and error answers."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar

from aiohttp import web

if TYPE_CHECKING:
    from testkit.fakes.discord.fake import FakeDiscord


JSON = dict[str, Any]
T = TypeVar("T")
P = ParamSpec("P")
FaultKind = Literal["500", "429", "timeout"]

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

FLAG_HAS_THREAD = 1 << 5
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7

# Which intent a dispatch needs; events not listed (READY, RESUMED, INTERACTION_CREATE) always go out.
_EVENT_INTENTS: dict[str, int] = {
    "GUILD_CREATE": INTENT_GUILDS,
    "CHANNEL_CREATE": INTENT_GUILDS,
    "THREAD_CREATE": INTENT_GUILDS,
    "THREAD_UPDATE": INTENT_GUILDS,
    "THREAD_DELETE": INTENT_GUILDS,
    "GUILD_MEMBER_ADD": INTENT_GUILD_MEMBERS,
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
    "MESSAGE_REACTION_ADD": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": INTENT_GUILD_MESSAGE_REACTIONS,
}


def _perm(*bits: int) -> int:
    return functools.reduce(lambda acc, bit: acc | (1 << bit), bits, 0)


# view channel, send messages, read history, add reactions, embed links, attach files, use app
# commands, create public threads, send messages in threads
PERMS_EVERYONE = _perm(6, 10, 11, 14, 15, 16, 31, 35, 38)
PERMS_BOT = PERMS_EVERYONE | _perm(13, 34, 36)  # + manage messages, manage threads, private threads
PERMS_ALL = (1 << 51) - 1

_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_DELAY = "delay"
_MENTION_RE = re.compile(r"<@!?(\d+)>")


# ---------------------------------------------------------------------------------- public records


@dataclass
class DiscordCall:
    """One REST request the fake answered; every request is kept so tests can assert on retries."""

    method: str
    path: str  # decoded, without the /api/v10 prefix, e.g. "/channels/1/messages/2/reactions/✅/@me"
    json: Any
    headers: dict[str, str]
    at: float  # time.monotonic() when the request arrived
    query: dict[str, str] = field(default_factory=dict)
    status: int = 0
    failed: bool = False  # answered with a status >= 400 (injected or not)
    fault: str | None = None  # the injected fault that answered it: "500", "429", "timeout", ...
    response: Any = None


@dataclass
class GatewayFrame:
    """A frame a client sent on the gateway (heartbeats, IDENTIFY with its intents, RESUME...)."""

    session_id: str | None
    op: int | None
    d: Any
    at: float


@dataclass
class InteractionReply:
    """An answer to an interaction: the callback, then follow-ups and edits, in arrival order."""

    kind: Literal["callback", "followup", "edit_original", "edit_followup", "delete"]
    type: int | None  # callback type (4 reply, 5 defer, 6 deferred update, 7 update message)
    json: JSON
    message_id: str | None
    ephemeral: bool
    at: float


# ---------------------------------------------------------------------------------- internals


@dataclass
class _Session:
    session_id: str
    intents: int
    identify: JSON
    seq: int = 0
    log: list[tuple[int, str]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None
    alive: bool = True  # resumable; False once the client closed with 1000/1001
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    query: dict[str, str]
    session: _Session | None = None
    server_closed: bool = False


@dataclass
class _Interaction:
    id: str
    token: str
    type: int
    payload: JSON
    channel_id: str
    created: float  # time.monotonic()
    message_id: str | None = None  # the clicked message (component interactions)
    callback_type: int | None = None
    original_id: str | None = None
    loading: bool = False  # a "thinking" placeholder waits for its first follow-up / edit
    replies: list[InteractionReply] = field(default_factory=list)
    modal: JSON | None = None  # the modal this interaction was answered with (callback type 9)
    submitted: bool = False  # the modal's submission was dispatched (each modal submits once)


class _HTTPError(Exception):
    """Raised by a route handler to answer with Discord's error JSON."""

    def __init__(self, status: int, message: str, code: int = 0, errors: JSON | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: JSON = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors


def _unknown(what: str, code: int) -> _HTTPError:
    return _HTTPError(404, f"Unknown {what}", code)


def _invalid(field_path: str, message: str, error_code: str = "BASE_TYPE_INVALID") -> _HTTPError:
    errors: JSON = {"_errors": [{"code": error_code, "message": message}]}
    for part in reversed(field_path.split(".")):
        errors = {part: errors}
    return _HTTPError(400, "Invalid Form Body", 50035, errors)


@dataclass
class _Req:
    method: str
    path: str
    params: dict[str, str]
    json: Any
    query: dict[str, str]


_Handler = Callable[["_Req"], Coroutine[Any, Any, tuple[int, Any]]]


def _on_fake_loop(
    fn: Callable[Concatenate[FakeDiscord, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[FakeDiscord, P], Coroutine[Any, Any, T]]:
    """Run a coroutine method on the fake's own loop, so it also works from a test thread's loop."""

    @functools.wraps(fn)
    async def wrapper(self: FakeDiscord, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._on_own_loop(fn(self, *args, **kwargs))

    return wrapper


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    """A response whose Content-Type is exactly ``application/json`` (discord.py insists)."""
    out = dict(headers or {})
    if status == 204 or body is None:
        return web.Response(status=204 if body is None and status < 300 else status, headers=out)
    out["Content-Type"] = "application/json"
    return web.Response(status=status, body=json.dumps(body, ensure_ascii=False).encode(), headers=out)
