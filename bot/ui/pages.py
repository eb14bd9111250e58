"""The pages: each one a query and a template. Everything shown comes from the database and is escaped by
Jinja's autoescape; nothing here changes anything except running `audit verify`, which only reads."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
from aiohttp import web

from bot.api_lists import BadFilter, query_cursor, query_limit, query_since, query_statuses
from bot.audit import audit_verify as verify_chain_and_requests
from bot.ui.auth import app_of, check_csrf, current
from bot.ui.change import change_lines
from core.chat.cards import request_card
from core.domain.approvals import RequestStatus
from core.domain.events import authentic
from core.domain.ids import RequestId, parse_request_id
from core.domain.incidents import IncidentStatus
from core.domain.integrity import request_problem
from core.domain.listing import BadCursor, IncidentQuery, Page, PlaybookQuery, RequestQuery
from core.domain.playbooks import PlaybookStatus
from core.errors import NotFound, SignoffError

if TYPE_CHECKING:
    from bot.bootstrap import App

PAGE = 50


def render(request: web.Request, template: str, nav: str, context: dict[str, Any], status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, {
        "session": current(request), "nav": nav, **context,
    }, status=status)


def _filters(request: web.Request, *names: str) -> dict[str, str]:
    return {name: request.query.get(name, "")[:200] for name in names}


async def _list_page(request: web.Request, name: str, filter_names: tuple[str, ...], statuses: list[Any],
                     query: Callable[[dict[str, str]], Awaitable[Page[Any]]]) -> web.Response:
    """A list page: its filters from the query string, a page of items, or the filter's refusal (400)."""
    filters = _filters(request, *filter_names)
    context = {"filters": filters, "statuses": statuses}
    try:
        page = await query(filters)
    except (BadFilter, BadCursor) as exc:
        return render(request, f"{name}.html", name, {**context, "items": [], "next": None, "error": exc.message},
                      status=400)
    return render(request, f"{name}.html", name, {**context, "items": page.items, "next": page.next_cursor,
                                                   "error": None})


async def request_list(request: web.Request) -> web.StreamResponse:
    app = app_of(request)

    async def query(filters: dict[str, str]) -> Page[Any]:
        return await app.history.requests(RequestQuery(
            statuses=query_statuses(request, RequestStatus), requester=filters["requester"] or None,
            since=query_since(request), limit=query_limit(request, PAGE), cursor=query_cursor(request, int)))

    return await _list_page(request, "requests", ("status", "requester", "since"), list(RequestStatus), query)


async def request_page(request: web.Request) -> web.StreamResponse:
    app = app_of(request)
    try:
        request_id = parse_request_id(request.match_info["request_id"])
        found = await app.service.get(request_id)
    except (NotFound, SignoffError) as exc:
        return render(request, "missing.html", "requests", {"message": exc.message}, status=404)
    timeline = await app.service.timeline(RequestId(found.id))
    key = app.settings.audit_key_bytes

    def integrity(uow: Any) -> tuple[str | None, int]:
        changes = uow.timeline.key_changes()
        return request_problem(found, uow.timeline, key), max((e.seq for e in changes), default=0)

    problem, sealed_before = await app.db.read(integrity)
    # Events before the last key change were hashed with an earlier key; that change's seal vouches for them.
    checked = [(event, event.seq < sealed_before or authentic(event, key)) for event in timeline]
    if problem is None and not all(ok for _, ok in checked):
        bad = next(event.seq for event, ok in checked if not ok)
        problem = f"event {bad}'s content does not match its hash"
    return render(request, "request.html", "requests", {
        "r": found, "card": request_card(found, app.clock.now()), "change": change_lines(found),
        "timeline": checked, "integrity": problem, "hmac": key is not None,
    })


async def incident_list(request: web.Request) -> web.StreamResponse:
    app = app_of(request)

    async def query(filters: dict[str, str]) -> Page[Any]:
        return await app.history.incidents(IncidentQuery(
            statuses=query_statuses(request, IncidentStatus), since=query_since(request),
            limit=query_limit(request, PAGE), cursor=query_cursor(request, str, str)))

    return await _list_page(request, "incidents", ("status", "since"), list(IncidentStatus), query)


async def playbook_list(request: web.Request) -> web.StreamResponse:
    app = app_of(request)

    async def query(filters: dict[str, str]) -> Page[Any]:
        return await app.history.playbooks(PlaybookQuery(
            statuses=query_statuses(request, PlaybookStatus), limit=query_limit(request, PAGE),
            cursor=query_cursor(request, str, str)))

    return await _list_page(request, "playbooks", ("status",), list(PlaybookStatus), query)


async def breakglass_page(request: web.Request) -> web.StreamResponse:
    """The break glass reviews still owed (open, disputed or overdue), oldest first."""
    app = app_of(request)
    items = await app.db.read(lambda uow: uow.requests.open_reviews())
    return render(request, "breakglass.html", "breakglass", {"items": items})


async def _chain_state(app: App) -> dict[str, Any]:
    head = await app.history.head()
    counts = await app.db.read(lambda uow: uow.requests.counts())
    lag = await app.audit_stream.lag() if app.audit_stream is not None else None
    return {"head": head, "hmac": app.settings.audit_key is not None, "counts": Counter(counts),
            "stream": app.settings.audit_webhook is not None, "lag": lag}


async def audit_page(request: web.Request) -> web.StreamResponse:
    app = app_of(request)
    return render(request, "audit.html", "audit", {**await _chain_state(app), "result": None, "exit": None})


async def audit_verify(request: web.Request) -> web.StreamResponse:
    """The same check as `signoff audit verify`, through the one function that does it."""
    check_csrf(request, await request.post())
    app = app_of(request)
    out = io.StringIO()
    code = await verify_chain_and_requests(app.db, app.settings.audit_key_bytes, out)
    return render(request, "audit.html", "audit", {
        **await _chain_state(app), "result": out.getvalue().strip(), "exit": code,
    })
