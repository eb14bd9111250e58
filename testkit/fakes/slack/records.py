"""The fake Slack's constants (team, app and bot ids), the calls tests read, and its internal records."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web

T = TypeVar("T")
JSONDict = dict[str, Any]
SocketEnvelopeType = Literal["slash_commands", "interactive", "events_api"]
FaultKind = Literal["500", "429", "timeout"]

DEFAULT_TEAM_ID = "T0TEST"
DEFAULT_TEAM_DOMAIN = "signoff-test"
DEFAULT_APP_ID = "A0TEST"
DEFAULT_BOT_USER_ID = "UBOT"
DEFAULT_VERIFICATION_TOKEN = "verification-token"

# Methods that take the app-level (xapp-) token; every other method takes the bot token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
_HTTP_ERROR_NAMES = {
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "request_timeout",
}
_DELAY = "delay"
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]+$")


@dataclass
class SlackCall:
    """One request the fake answered; kept for every request so tests can assert on retries too."""

    method: str
    args: JSONDict
    headers: dict[str, str]
    at: float  # time.monotonic() when the request arrived
    path: str = ""
    status: int = 200
    failed: bool = False  # answered with a non-200 status or ``ok: false``
    error: str | None = None
    fault: str | None = None  # injected fault that answered it: "500", "429", "timeout", "error"
    response: JSONDict | None = None


@dataclass
class _ResponseUrl:
    channel: str | None
    message_ts: str | None
    user_id: str | None


@dataclass
class _SocketState:
    connections: list[web.WebSocketResponse] = field(default_factory=list)
    connect_count: int = 0
    tickets: set[str] = field(default_factory=set)
    sent: list[JSONDict] = field(default_factory=list)
    received: list[JSONDict] = field(default_factory=list)
    acks: dict[str, JSONDict] = field(default_factory=dict)


class _ApiError(Exception):
    """Raised inside a method implementation to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra
