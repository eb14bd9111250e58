"""The one aiohttp server: /healthz, /metrics, /api/v1/*, and /slack/events when Slack is in HTTP mode."""

from __future__ import annotations

import hmac
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from adapters.alertmanager import BadAlert, parse_alertmanager
from bot.bootstrap import App
from bot.openapi import OPENAPI_PATH, openapi_document
from core.app.alert_outcomes import AlertOutcome
from core.domain.alerts import Alert, AlertStatus
from core.domain.approvals import ApprovalRequest
from core.domain.ids import RequestId, parse_incident_id, parse_request_id
from core.domain.policy import Risk
from core.domain.text import clean_text
from core.errors import NotFound, RateLimited, SignoffError, UnknownPerson

log = structlog.get_logger(__name__)

MAX_BODY = 64 * 1024
MAX_ALERT_BODY = 4 * 1024 * 1024
APP_KEY: web.AppKey[App] = web.AppKey("signoff_app", App)


def request_json(request: ApprovalRequest, timeline: list[Any] | None = None) -> dict[str, Any]:
    data = request.model_dump(mode="json")
    data["command"] = request.operation.command()
    data["signed"] = request.signed
    if timeline is not None:
        data["timeline"] = [event.model_dump(mode="json") for event in timeline]
    return data


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _authorized(app: App, request: web.Request) -> bool:
    token = app.settings.api_token
    if token is None:
        return False
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        except SignoffError as exc:
            return _error(422, exc.code, exc.message)
    return wrapped


async def _read_json(request: web.Request, limit: int = MAX_BODY, what: str = "a JSON object") -> Any:
    """The body as JSON, refused with a sentence when it is too large or not JSON."""
    too_large = f"The body is larger than {limit // 1024} KiB; send at most that."
    if request.content_length is not None and request.content_length > limit:
        raise SignoffError(too_large)
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise SignoffError(too_large)
    try:
        return json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise SignoffError(f"The body is not valid JSON; send {what}.") from None


def _string(data: dict[str, Any], key: str, *, required: bool = False, limit: int = 500) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise SignoffError(f"`{key}` is required.")
        return None
    if not isinstance(value, str):
        raise SignoffError(f"`{key}` must be a string.")
    if len(value) > limit:
        raise SignoffError(f"`{key}` is longer than {limit} characters.")
    return clean_text(value)


async def create_request(app: App, request: web.Request) -> web.StreamResponse:
    data = await _read_json(request)
    if not isinstance(data, dict):
        raise SignoffError("The body must be a JSON object like {\"action\": …, \"requested_by\": …}.")
    action = _string(data, "action", required=True)
    requested_by = _string(data, "requested_by", required=True, limit=200)
    assert action is not None and requested_by is not None
    risk_text = _string(data, "risk", limit=20)
    try:
        risk = Risk(risk_text.lower()) if risk_text else None
    except ValueError:
        raise SignoffError(f"`risk` must be low, medium, high or critical, not `{risk_text}`.") from None
    person = app.policy.person("api", requested_by)
    incident = _string(data, "incident_id", limit=64)
    created = await app.service.request(
        action, by=person, via="api", risk=risk, reason=_string(data, "reason"),
        incident_id=parse_incident_id(incident) if incident is not None else None,  # INC-… as chat has it
    )
    return web.json_response(request_json(created), status=201)


async def get_request(app: App, request: web.Request) -> web.StreamResponse:
    found = await app.service.get(parse_request_id(request.match_info["request_id"]))
    timeline = await app.service.timeline(RequestId(found.id))
    return web.json_response(request_json(found, timeline))


async def receive_alerts(app: App, request: web.Request) -> web.StreamResponse:
    payload = await _read_json(request, MAX_ALERT_BODY, "Alertmanager's version 4 webhook payload")
    parsed = parse_alertmanager(payload)
    good = iter(await app.alerts.ingest_alerts([a for a in parsed if isinstance(a, Alert)]))
    outcomes = [AlertOutcome(fingerprint=a.fingerprint, status=AlertStatus.firing, error=a.error)
                if isinstance(a, BadAlert) else next(good) for a in parsed]
    for bad in (a for a in parsed if isinstance(a, BadAlert)):
        log.warning("alert.refused", fingerprint=bad.fingerprint, error=bad.error)
    # A bad alert is its own outcome (resending it changes nothing); signoff failing on a good one is worth
    # Alertmanager's retry, which repeats nothing that was already taken.
    failed = any(o.error is not None and not isinstance(a, BadAlert) for a, o in zip(parsed, outcomes, strict=True))
    return web.json_response({"alerts": [o.model_dump(mode="json") for o in outcomes]}, status=503 if failed else 200)


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


def build_http_app(app: App) -> web.Application:
    http = web.Application(client_max_size=MAX_ALERT_BODY)
    http[APP_KEY] = app
    http.router.add_get("/healthz", healthz)
    http.router.add_get("/metrics", metrics)
    http.router.add_post("/api/v1/requests", _api(create_request))
    http.router.add_get("/api/v1/requests/{request_id}", _api(get_request))
    http.router.add_post("/api/v1/alerts", _api(receive_alerts))
    http.router.add_get(OPENAPI_PATH, openapi)
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
