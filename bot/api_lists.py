"""The list endpoints of the HTTP API: requests, incidents and playbooks newest first, and the audit chain.

Each takes its filters from the query string and answers `{"items": [...], "next_cursor": ...}`. An unknown
parameter, a bad value or a cursor this list did not give out is a 400 naming the parameter and what it
accepts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, TypeVar

from aiohttp import web

from bot.api_json import request_json
from bot.bootstrap import App
from core.domain.approvals import RequestStatus
from core.domain.incidents import IncidentStatus
from core.domain.listing import (
    DEFAULT_LIMIT,
    MAX_AUDIT_LIMIT,
    MAX_LIMIT,
    BadCursor,
    IncidentQuery,
    Page,
    PlaybookQuery,
    RequestQuery,
    decode_cursor,
)
from core.domain.playbooks import PlaybookStatus
from core.errors import SignoffError

E = TypeVar("E", bound=StrEnum)
DEFAULT_AUDIT_LIMIT = 100


class BadFilter(SignoffError):
    code = "invalid_filter"


Handler = Callable[[App, web.Request], Awaitable[web.StreamResponse]]


def _listing(*allowed: str) -> Callable[[Handler], Handler]:
    """Refuse parameters the list does not know (a typo must not silently widen the list) and bad values, with 400."""
    def wrap(handler: Handler) -> Handler:
        async def checked(app: App, request: web.Request) -> web.StreamResponse:
            unknown = sorted(set(request.query) - set(allowed))
            try:
                if unknown:
                    raise BadFilter(f"`{unknown[0][:40]}` is not a parameter of this list; it takes "
                                    + ", ".join(f"`{name}`" for name in allowed) + ".")
                return await handler(app, request)
            except (BadFilter, BadCursor) as exc:
                return web.json_response({"error": exc.code, "message": exc.message}, status=400)
        return checked
    return wrap


def query_cursor(request: web.Request, *key: type) -> str | None:
    cursor = _text(request, "cursor", 400)
    if cursor is not None:
        decode_cursor(cursor, *key)  # refused here, before any query, when this list did not give it out
    return cursor


def query_statuses(request: web.Request, kind: type[E]) -> tuple[E, ...]:
    """`status=a,b` or `status=a&status=b`."""
    given = [part.strip().lower() for value in request.query.getall("status", []) for part in value.split(",")]
    allowed = ", ".join(member.value for member in kind)
    found: list[E] = []
    for name in filter(None, given):
        try:
            found.append(kind(name))
        except ValueError:
            raise BadFilter(f"`status` must be one or more of {allowed} (comma-separated), not `{name}`.") from None
    return tuple(found)


def query_limit(request: web.Request, default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT) -> int:
    text = request.query.get("limit")
    if text is None or text == "":
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise BadFilter(f"`limit` must be a whole number from 1 to {most}, not `{text[:40]}`.")
    return int(text)


def query_since(request: web.Request) -> datetime | None:
    text = request.query.get("since")
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), time())
        except ValueError:
            raise BadFilter(
                f"`since` must be a date or an RFC 3339 time such as 2026-12-01 or 2026-12-01T08:00:00Z, "
                f"not `{text[:40]}`."
            ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _text(request: web.Request, key: str, limit: int = 200) -> str | None:
    value = request.query.get(key)
    if value is None or value == "":
        return None
    if len(value) > limit:
        raise BadFilter(f"`{key}` is longer than {limit} characters.")
    return value


def _page(page: Page[Any], render: Callable[[Any], dict[str, Any]]) -> web.Response:
    return web.json_response({"items": [render(item) for item in page.items], "next_cursor": page.next_cursor})


@_listing("status", "requester", "cluster", "since", "limit", "cursor")
async def list_requests(app: App, request: web.Request) -> web.StreamResponse:
    query = RequestQuery(
        statuses=query_statuses(request, RequestStatus), requester=_text(request, "requester"),
        cluster=_text(request, "cluster", limit=64), since=query_since(request),
        limit=query_limit(request), cursor=query_cursor(request, int),
    )
    return _page(await app.history.requests(query), request_json)


@_listing("status", "since", "limit", "cursor")
async def list_incidents(app: App, request: web.Request) -> web.StreamResponse:
    query = IncidentQuery(statuses=query_statuses(request, IncidentStatus), since=query_since(request),
                          limit=query_limit(request), cursor=query_cursor(request, str, str))
    return _page(await app.history.incidents(query), lambda incident: incident.model_dump(mode="json"))


@_listing("status", "limit", "cursor")
async def list_playbooks(app: App, request: web.Request) -> web.StreamResponse:
    query = PlaybookQuery(statuses=query_statuses(request, PlaybookStatus), limit=query_limit(request),
                          cursor=query_cursor(request, str, str))
    return _page(await app.history.playbooks(query), lambda playbook: playbook.model_dump(mode="json"))


@_listing("after", "limit")
async def list_audit(app: App, request: web.Request) -> web.StreamResponse:
    text = request.query.get("after") or "0"
    if not text.isdigit():
        raise BadFilter(f"`after` must be a sequence number (0 for the start of the chain), not `{text[:40]}`.")
    limit = query_limit(request, DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT)
    events = await app.history.chain(after=int(text), limit=limit)
    last = int(events[-1]["seq"]) if len(events) == limit else None
    return web.json_response({
        "items": events,
        "next_cursor": str(last) if last is not None else None,
        "next_after": last,
    })
