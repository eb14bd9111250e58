"""The HTTP API keeps its contract (issue 18, item 12): every /api/v1 error is the JSON error shape with a
specific code that the OpenAPI document lists, 405 and 500 included; a key given twice is refused; the action's
length limit is one constant shared by the parser, the handler and the document."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from bot.bootstrap import App
from bot.openapi import ERROR_CODES, openapi_document
from core.domain.operations import MAX_ACTION_LENGTH
from tests.integration.test_learning import TOKEN, alert_app

__all__ = ["alert_app"]

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


async def call(method: str, url: str, raw: bytes | None = None) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url, data=raw, headers=AUTH) as response:
        text = await response.text()
        assert response.content_type == "application/json", (response.status, text)
        return response.status, json.loads(text), response.headers.get("Allow", "")


def requests_url(alerts_url: str) -> str:
    return alerts_url.replace("/api/v1/alerts", "/api/v1/requests")


async def test_each_422_has_a_specific_documented_code(alert_app: tuple[App, str]) -> None:
    _app, url = alert_app
    url = requests_url(url)
    cases = {
        b'{"action": "cordon node-1", "requested_by": "x"': "invalid_json",
        b'["cordon node-1"]': "invalid_body",
        b'{"requested_by": "x"}': "missing_field",
        b'{"action": 7, "requested_by": "x"}': "invalid_field",
        b'{"action": "cordon node-1", "requested_by": "x", "risk": "huge"}': "invalid_risk",
        b'{"action": "exec api -- sh", "requested_by": "x"}': "unknown_operation",
        b'{"action": "cordon node-1", "requested_by": "x", "incident_id": "INC 7"}': "invalid_incident_id",
        json.dumps({"action": "cordon node-1", "requested_by": "x", "reason": "r" * 501}).encode(): "field_too_long",
    }
    for raw, code in cases.items():
        status, body, _ = await call("POST", url, raw)
        assert (status, body["error"]) == (422, code), (raw[:80], body)
        assert body["message"] and code in ERROR_CODES
    documented = openapi_document()["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(ERROR_CODES) <= set(documented["examples"]) | set(documented.get("enum", ()))


async def test_a_key_given_twice_is_refused_not_the_last_one_taken(alert_app: tuple[App, str]) -> None:
    app, url = alert_app
    raw = b'{"action": "cordon node-1", "requested_by": "assistant", "action": "drain node-1"}'
    status, body, _ = await call("POST", requests_url(url), raw)
    assert (status, body["error"]) == (422, "duplicate_key") and "`action`" in body["message"], body
    assert await app.db.read(lambda uow: uow.requests.counts()) == {}  # nothing was created


async def test_the_action_limit_is_one_constant(alert_app: tuple[App, str]) -> None:
    _app, url = alert_app
    schema = openapi_document()["components"]["schemas"]["NewRequest"]["properties"]["action"]
    assert schema["maxLength"] == MAX_ACTION_LENGTH
    action = "cordon node-" + "1" * (MAX_ACTION_LENGTH - len("cordon node-"))
    status, body, _ = await call("POST", requests_url(url), json.dumps({"action": action + "1",
                                                                         "requested_by": "x"}).encode())
    assert (status, body["error"]) == (422, "field_too_long") and str(MAX_ACTION_LENGTH) in body["message"]
    # At the limit the parser takes it (the name is too long for Kubernetes: refused as an operation, not a size).
    raw = json.dumps({"action": action, "requested_by": "x"}).encode()
    status, body, _ = await call("POST", requests_url(url), raw)
    assert status == 422 and body["error"] == "unknown_operation" and "longer than" not in body["message"], body


async def test_405_404_and_500_are_json(alert_app: tuple[App, str]) -> None:
    app, url = alert_app
    status, body, allow = await call("GET", url)
    assert (status, body["error"]) == (405, "method_not_allowed") and "POST" in allow and "POST" in body["message"]
    status, body, _ = await call("GET", url.replace("/alerts", "/nowhere"))
    assert (status, body["error"]) == (404, "not_found")
    # A row edited behind signoff's back cannot be read: a 500, in the JSON shape, saying where to look.
    status, created, _ = await call("POST", requests_url(url),
                                    b'{"action": "cordon node-1", "requested_by": "assistant"}')
    assert status == 201, created
    await app.db.write(lambda uow: uow.connection.exec_driver_sql("UPDATE requests SET data = '{\"broken\": 1}'"))
    status, body, _ = await call("GET", requests_url(url) + "/" + created["id"])
    assert (status, body["error"]) == (500, "internal_error") and "log" in body["message"], body


async def test_the_list_endpoints_refusals_are_documented_codes(alert_app: tuple[App, str]) -> None:
    _app, url = alert_app
    base = url.replace("/api/v1/alerts", "/api/v1")
    for path, code in (("/requests?colour=red", "invalid_filter"), ("/requests?limit=x", "invalid_filter"),
                       ("/incidents?cursor=nonsense", "invalid_cursor"), ("/audit?after=x", "invalid_filter")):
        status, body, _ = await call("GET", base + path)
        assert (status, body["error"]) == (400, code) and code in ERROR_CODES, (path, body)
    status, body, allow = await call("DELETE", base + "/audit")
    assert (status, body["error"]) == (405, "method_not_allowed") and "GET" in allow
