"""Database URLs as a person sees them: the password, in whatever form it was given, never shown."""

from __future__ import annotations

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
