"""Web sessions: a cookie carrying who signed in, signed with SIGNOFF_SESSION_KEY (HMAC-SHA256).

The cookie is `base64url(json).signature`. A cookie whose signature does not check out (tampered, or signed by
another deployment's key), that has expired or that cannot be read is no session at all: its holder gets the
login page. Nothing secret is in it; it only has to be unforgeable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

SESSION_COOKIE = "signoff_session"
SESSION_HOURS = 12
COOKIE_PATH = "/ui"
# Random per process unless SIGNOFF_SESSION_KEY is set: a restart signs everybody out, and replicas need the setting.
_PROCESS_KEY = secrets.token_bytes(32)


class Session(BaseModel):
    """Who is signed in (a person of the policy, or `API token`), how, until when, and the form token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    who: str
    via: str  # "oidc" or "token"
    expires: int  # epoch seconds
    csrf: str

    @classmethod
    def start(cls, who: str, via: str, *, hours: int = SESSION_HOURS) -> Session:
        return cls(who=who, via=via, expires=int(time.time()) + hours * 3600, csrf=secrets.token_urlsafe(24))


def signing_key(configured: str | None, purpose: str) -> bytes:
    """A key for one purpose (sessions, the sign-in round trip), derived from the configured or the process key."""
    base = configured.encode("utf-8") if configured else _PROCESS_KEY
    return hmac.new(base, f"signoff-ui:{purpose}".encode(), hashlib.sha256).digest()


def seal(data: dict[str, Any], key: bytes) -> str:
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    signature = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{signature}"


def unseal(value: str | None, key: bytes) -> dict[str, Any] | None:
    """The data of a sealed value, or None when it is absent, altered, signed with another key or expired."""
    if not value or value.count(".") != 1 or len(value) > 4096:
        return None
    body, signature = value.split(".")
    expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("expires"), int) or data["expires"] < time.time():
        return None
    return data


def read_session(request: web.Request, key: bytes) -> Session | None:
    data = unseal(request.cookies.get(SESSION_COOKIE), key)
    if data is None:
        return None
    try:
        return Session.model_validate(data)
    except ValidationError:
        return None


def is_https(request: web.Request) -> bool:
    """Behind a TLS-terminating proxy the scheme arrives as X-Forwarded-Proto."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="Lax",
                        secure=is_https(request))


def clear_cookie(response: web.StreamResponse, request: web.Request, name: str) -> None:
    response.del_cookie(name, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=is_https(request))


def start_session(response: web.StreamResponse, request: web.Request, session: Session, key: bytes) -> None:
    set_cookie(response, request, SESSION_COOKIE, seal(session.model_dump(), key), SESSION_HOURS * 3600)
