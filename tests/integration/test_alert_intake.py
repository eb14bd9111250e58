"""One bad alert never loses its group (issue: hardening, defect 5): oversize values are truncated with a
marker, each alert gets its own outcome, a bad alert is an error beside the good ones, the answer is 200 unless
the body is not a webhook at all, and NULs and lone surrogates are cleaned on every input path (checked on
PostgreSQL too, where a lone surrogate cannot be stored)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from bot.bootstrap import App
from core.chat.commands import ChatContext
from core.domain.approvals import Place
from tests.integration.test_learning import TOKEN, alert, alert_app, payload

__all__ = ["alert_app"]  # the fixture, shared with the learning tests


async def post_raw(url: str, raw: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
        url, data=raw.encode(), headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json()


async def test_a_bad_alert_never_loses_the_good_ones(alert_app: tuple[App, str]) -> None:
    app, url = alert_app
    many = {f"label{i:02d}": "x" for i in range(70)}
    body = payload(
        alert("KubeNodeNotReady", {"node": "node-2"}, fingerprint="good1", description="d" * 600),
        {"status": "firing", "labels": {"severity": "page"}, "fingerprint": "nameless"},
        alert("KubeNodeNotReady", {"node": "node-3", **many}, fingerprint="wide"),
        alert("KubeNodeNotReady", {"node": "node-1", "note": "v" * 5000}, fingerprint="long"),
        "not an alert",
    )
    status, answer = await post_raw(url, json.dumps(body))
    assert status == 200, answer
    outcomes = answer["alerts"]
    assert len(outcomes) == 5  # one outcome per alert, in order
    assert [o["fingerprint"] for o in outcomes[:4]] == ["good1", "nameless", "wide", "long"]
    assert outcomes[0]["error"] is None and outcomes[0]["incident_id"]
    assert "alertname" in outcomes[1]["error"] and outcomes[1]["incident_id"] is None
    assert outcomes[2]["error"] is None and outcomes[2]["incident_id"]
    assert outcomes[3]["error"] is None and outcomes[3]["incident_id"]
    assert outcomes[4]["error"] and "object" in outcomes[4]["error"]
    long = await app.incidents.incident(outcomes[3]["incident_id"])
    assert long.labels["note"].endswith("…[truncated]") and len(long.labels["note"]) <= 512
    wide = await app.incidents.incident(outcomes[2]["incident_id"])
    assert len(wide.labels) <= 64 and wide.labels["node"] == "node-3" and wide.labels["alertname"]


async def test_nul_and_lone_surrogates_are_cleaned(alert_app: tuple[App, str]) -> None:
    app, url = alert_app
    # JSON escapes decode to a lone surrogate and a NUL in Python: neither can be stored as UTF-8 text.
    raw = json.dumps(payload(alert("KubeNodeNotReady", {"node": "node-2", "team": "X"}, fingerprint="s1")))
    raw = raw.replace('"team": "X"', '"team": "X\\ud800Y\\u0000Z"')
    status, answer = await post_raw(url, raw)
    assert status == 200, answer
    incident = await app.incidents.incident(answer["alerts"][0]["incident_id"])
    assert incident.labels["team"] == "X\ufffdYZ"
    # The same through chat: a reason with a NUL and a lone surrogate.
    reply = await app.chat.handle('request cordon node-1 reason="db\x00 is \ud800 slow"',
                                  ChatContext(platform="console", account="alice",
                                              place=Place(platform="console", channel="console")))
    assert reply.ok, reply.text
    request = await app.service.get(reply.request_id)  # type: ignore[arg-type]
    assert request.reason == "db is \ufffd slow"


async def test_a_body_that_is_not_a_webhook_is_still_refused(alert_app: tuple[App, str]) -> None:
    _app, url = alert_app
    assert (await post_raw(url, "[1, 2]"))[0] == 422
    status, body = await post_raw(url, '{"version": "3", "alerts": []}')
    assert (status, body["error"]) == (422, "invalid_payload") and "version 4" in body["message"]
