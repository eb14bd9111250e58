"""Database URLs as a person sees them: the password, in whatever form it was given, never shown."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

MASK = "***"


def url_passwords(url: str) -> list[str]:
    """Every form of the password in `url`: `user:pass@host` (a password may hold `:` or `@`) and `?password=`."""
    found: list[str] = []
    _, sep, rest = url.partition("://")
    if not sep:
        return found
    before_query, _, query = rest.partition("?")
    at = before_query.rfind("@")  # the host never holds `@`; a password may
    if at > 0:
        _, colon, password = before_query[:at].partition(":")
        if colon and password:
            found += [password, unquote(password)]
    for key, value in parse_qsl(query, keep_blank_values=False):
        if key.lower() in ("password", "passwd", "pwd") and value:
            found.append(value)
    for raw in query.split("&"):
        key, eq, value = raw.partition("=")
        if eq and key.lower() in ("password", "passwd", "pwd") and value:
            found.append(value)  # as written, %-escapes and all
    return sorted({p for p in found if p}, key=len, reverse=True)


def mask_url(url: str, secrets: list[str] | None = None) -> str:
    """`url` with its password (and any other given secret) replaced by ***."""
    masked = url
    for secret in sorted({*url_passwords(url), *(secrets or [])}, key=len, reverse=True):
        if secret:
            masked = masked.replace(secret, MASK)
    return masked


URL_FORM = "postgresql+asyncpg://user:password@host:5432/name or sqlite+aiosqlite:///signoff.db"


def url_problem(url: str) -> str | None:
    """Why `url` is not a database URL signoff can use, in one sentence that never shows the password; or None.

    Checked by hand (as SQLAlchemy's `make_url` reads it: the host is after the last `@`) so that settings do not
    import SQLAlchemy before `signoff run` listens.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[\w+]+", scheme):
        return f"is not a database URL; write it like {URL_FORM}"
    authority = rest.partition("?")[0]
    authority = authority[authority.rfind("@") + 1:].partition("/")[0]
    host, colon, port = authority.rpartition(":") if not authority.endswith("]") else (authority, "", "")
    if colon and host and port:
        if not port.isascii() or not port.isdigit():
            return f"has a port that is not a number; write it like {URL_FORM}"
        if not 0 < int(port) <= 65535:
            return f"has port {int(port)}, outside 1-65535; write it like {URL_FORM}"
    return None
