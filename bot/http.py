"""The one aiohttp server: /healthz, /metrics, /api/v1/*, the web view at /ui/ (bot/ui), and /slack/events when
Slack is in HTTP mode."""

from __future__ import annotations

import hmac
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from adapters.alertmanager import BadAlert, parse_alertmanager
from bot.api_json import request_json
from bot.api_lists import list_audit, list_incidents, list_playbooks, list_requests
from bot.bootstrap import App
from bot.openapi import OPENAPI_PATH, openapi_document
from bot.ui import add_ui_routes
from core.app.alert_outcomes import AlertOutcome
from core.app.service import MAX_REASON
from core.domain.alerts import Alert, AlertStatus
from core.domain.ids import RequestId, parse_incident_id, parse_request_id
from core.domain.operations import MAX_ACTION_LENGTH
from core.domain.policy import Risk
from core.domain.text import clean_text, name_problem
from core.errors import NotFound, ParseError, RateLimited, SignoffError, UnknownPerson

log = structlog.get_logger(__name__)

MAX_BODY = 64 * 1024
MAX_ALERT_BODY = 4 * 1024 * 1024
APP_KEY: web.AppKey[App] = web.AppKey("signoff_app", App)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


class HttpRefusal(SignoffError):
    """A refusal by the HTTP layer itself (the body, a field), with its status and a specific code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# aiohttp's own answers (no route, wrong method, a body over client_max_size…) as /api/v1 errors.
_HTTP_ERRORS = {
    404: ("not_found", "There is no such endpoint; GET /api/v1/openapi.json lists them."),
    405: ("method_not_allowed", "This endpoint does not take {method}; it takes {allowed}."),
    413: ("body_too_large", "The body is larger than {limit}; send at most that."),
}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /api/v1 answer that is an error is the JSON error shape, 405 and 500 included."""
    if not request.path.startswith("/api/v1/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_ERRORS.get(exc.status, ("http_error", exc.reason + "."))
        allowed = exc.headers.get("Allow", "")
        response = _error(exc.status, code, message.format(method=request.method, allowed=allowed or "nothing",
                                                           limit=_size(MAX_ALERT_BODY)))
        if allowed:
            response.headers["Allow"] = allowed
        return response
    except Exception:
        log.exception("http.failed", method=request.method, path=request.path)
        return _error(500, "internal_error", "signoff failed on this request; its log says why. Try again, "
                                             "and tell signoff's operators if it keeps failing.")


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


def _authorized(app: App, request: web.Request) -> bool:
    token = app.settings.api_token
    if token is None:
        return False
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode())


def _api(handler: Callable[[App, web.Request], Awaitable[web.StreamResponse]]) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        app = request.app[APP_KEY]
        if app.settings.api_token is None:
            return _error(404, "api_disabled", "The HTTP API is off; set SIGNOFF_API_TOKEN to enable it.")
        if not _authorized(app, request):
            return _error(401, "unauthorized", "Send `Authorization: Bearer <SIGNOFF_API_TOKEN>`.")
        try:
            return await handler(app, request)
        except NotFound as exc:
            return _error(404, exc.code, exc.message)
        except UnknownPerson as exc:
            return _error(403, exc.code, exc.message)
        except RateLimited as exc:
            response = _error(429, exc.code, exc.message)
            response.headers["Retry-After"] = str(exc.retry_after_s)
            return response
        except HttpRefusal as exc:
            return _error(exc.status, exc.code, exc.message)
        except SignoffError as exc:
            return _error(422, exc.code, exc.message)
    return wrapped


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once: `{"action": a, "action": b}` is refused, not `b`."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return data


async def _read_json(request: web.Request, limit: int = MAX_BODY, what: str = "a JSON object",
                     smaller: str = "send at most that") -> Any:
    """The whole body as JSON, refused with a sentence when it is too large or not JSON.

    `request.read()` reads to the end of the body, however slowly it arrives, up to the application's
    `client_max_size` (the largest limit); a body over it is HTTPRequestEntityTooLarge.
    """
    too_large = HttpRefusal(413, "body_too_large", f"The body is larger than {_size(limit)}; {smaller}.")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    if len(raw) > limit:
        raise too_large
    try:
        return json.loads(raw or b"{}", object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise HttpRefusal(422, "duplicate_key", f"The key `{clean_text(exc.key)[:40]}` is given twice in the body; "
                                                "give each key once.") from None
    except (ValueError, UnicodeDecodeError):
        raise HttpRefusal(422, "invalid_json", f"The body is not valid JSON; send {what}.") from None


def _string(data: dict[str, Any], key: str, *, required: bool = False, limit: int = 500) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise HttpRefusal(422, "missing_field", f"`{key}` is required.")
        return None
    if not isinstance(value, str):
        raise HttpRefusal(422, "invalid_field", f"`{key}` must be a string.")
    if len(value) > limit:
        raise HttpRefusal(422, "field_too_long", f"`{key}` is longer than {limit} characters; send at most {limit}.")
    return clean_text(value)


async def create_request(app: App, request: web.Request) -> web.StreamResponse:
    data = await _read_json(request)
    if not isinstance(data, dict):
        raise HttpRefusal(422, "invalid_body",
                          "The body must be a JSON object like {\"action\": …, \"requested_by\": …}.")
    action = _string(data, "action", required=True, limit=MAX_ACTION_LENGTH)
    requested_by = _string(data, "requested_by", required=True, limit=200)
    assert action is not None and requested_by is not None
    problem = name_problem(requested_by, "requested_by")
    if problem is not None:
        raise HttpRefusal(422, "invalid_name", problem)
    risk_text = _string(data, "risk", limit=20)
    try:
        risk = Risk(risk_text.lower()) if risk_text else None
    except ValueError:
        raise HttpRefusal(422, "invalid_risk", f"`risk` must be low, medium, high or critical, not `{risk_text}`.") \
            from None
    person = app.policy.person("api", requested_by)
    incident = _string(data, "incident_id", limit=64)
    try:
        incident_id = parse_incident_id(incident) if incident is not None else None  # INC-… as chat has it
    except ParseError as exc:
        raise HttpRefusal(422, "invalid_incident_id", exc.message) from None
    reason = _string(data, "reason", limit=MAX_REASON)
    cluster = _string(data, "cluster", limit=64)
    try:
        created = await app.service.request(action, by=person, via="api", risk=risk, reason=reason,
                                            incident_id=incident_id, cluster=cluster)
    except ParseError as exc:  # the fields are checked above: what is left is the action
        raise HttpRefusal(422, "unknown_operation", exc.message) from None
    return web.json_response(request_json(created), status=201)


async def get_request(app: App, request: web.Request) -> web.StreamResponse:
    found = await app.service.get(parse_request_id(request.match_info["request_id"]))
    timeline = await app.service.timeline(RequestId(found.id))
    return web.json_response(request_json(found, timeline))


async def receive_alerts(app: App, request: web.Request) -> web.StreamResponse:
    payload = await _read_json(request, MAX_ALERT_BODY, "Alertmanager's version 4 webhook payload",
                               "make Alertmanager's groups smaller (more labels in the route's `group_by`)")
    try:
        parsed = parse_alertmanager(payload)
    except ParseError as exc:  # the body as a whole; a bad alert inside it is that alert's outcome
        raise HttpRefusal(422, "invalid_payload", exc.message) from None
    good = iter(await app.alerts.ingest_alerts([a for a in parsed if isinstance(a, Alert)]))
    outcomes = [AlertOutcome(fingerprint=a.fingerprint, status=AlertStatus.firing, error=a.error)
                if isinstance(a, BadAlert) else next(good) for a in parsed]
    for bad in (a for a in parsed if isinstance(a, BadAlert)):
        log.warning("alert.refused", fingerprint=bad.fingerprint, error=bad.error)
    # A bad alert is its own outcome (resending it changes nothing); signoff failing on a good one is worth
    # Alertmanager's retry, which repeats nothing that was already taken.
    failed = any(o.error is not None and not isinstance(a, BadAlert) for a, o in zip(parsed, outcomes, strict=True))
    return web.json_response({"alerts": [o.model_dump(mode="json") for o in outcomes]}, status=503 if failed else 200)


def _webhook(handler: Handler) -> Handler:
    """Alertmanager never sends a refused (4xx) notification again: each refusal is an error line and counted."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        if 400 <= response.status < 500 and isinstance(response, web.Response) and isinstance(response.body, bytes):
            answer = json.loads(response.body)  # always the JSON error shape (_error)
            code = str(answer.get("error", "http_error"))
            request.app[APP_KEY].metrics.inc("signoff_alert_webhooks_refused_total", reason=code)
            log.error("alerts.webhook_refused", status=response.status, error=code, bytes=request.content_length,
                      message=answer.get("message"))
        return response
    return wrapped


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document())


async def metrics(request: web.Request) -> web.StreamResponse:
    # prometheus-client is imported on the first scrape, not before the server may listen (start-up time).
    from bot.metrics import render_metrics

    body = await render_metrics(request.app[APP_KEY])
    return web.Response(text=body, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


async def reload_policy(app: App, request: web.Request) -> web.StreamResponse:
    """`POST /-/reload`: as SIGHUP (docs/policy.md); an invalid file answers 422 and the old policy stays."""
    if app.reloader is None:
        raise HttpRefusal(409, "no_policy_file", "There is no policy file to reload (the built-in policy is in "
                          "force); set SIGNOFF_POLICY to a policy file and restart.")
    policy = await app.reloader.reload("http")
    return web.json_response({"status": "reloaded", "source": policy.source, "clusters": list(policy.clusters),
                              "people": len(policy.people)})


def build_http_app(app: App) -> web.Application:
    http = web.Application(client_max_size=MAX_ALERT_BODY, middlewares=[json_errors])
    http[APP_KEY] = app
    http.router.add_get("/healthz", healthz)
    http.router.add_get("/metrics", metrics)
    http.router.add_post("/api/v1/requests", _api(create_request))
    http.router.add_get("/api/v1/requests", _api(list_requests))
    http.router.add_get("/api/v1/requests/{request_id}", _api(get_request))
    http.router.add_get("/api/v1/incidents", _api(list_incidents))
    http.router.add_get("/api/v1/playbooks", _api(list_playbooks))
    http.router.add_get("/api/v1/audit", _api(list_audit))
    http.router.add_post("/api/v1/alerts", _webhook(_api(receive_alerts)))
    http.router.add_get(OPENAPI_PATH, openapi)
    http.router.add_post("/-/reload", _api(reload_policy))
    add_ui_routes(http, APP_KEY)
    return http


class HttpServer:
    """The aiohttp server on (host, port), or on `sock` when the port was bound earlier (bot/listen.py);
    the server owns the socket then and closes it on stop."""

    def __init__(self, http: web.Application, host: str, port: int, *, sock: socket.socket | None = None) -> None:
        self._runner = web.AppRunner(http, access_log=None)
        self._host = host
        self._port = port
        self._sock = sock
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site: web.BaseSite = (web.SockSite(self._runner, self._sock) if self._sock is not None
                              else web.TCPSite(self._runner, self._host, self._port))
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("http.listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
