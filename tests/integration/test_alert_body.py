"""Large Alertmanager bodies are read whole (issue 18, item 1).

A webhook of 1, 2 or 4 MiB sent in small chunks by a slow client on loopback is read to its end and every
alert in it is recorded; a body over the documented 4 MiB limit is answered 413 in the JSON error shape; each
refused webhook is an error line in the log and counted in /metrics. (Before the fix the body was read with
`content.read(limit + 1)`, which returns what happens to be buffered: large bodies were cut and refused 422.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import structlog

from bot.bootstrap import App
from bot.http import MAX_ALERT_BODY
from tests.integration.test_learning import TOKEN, alert, alert_app, payload

__all__ = ["alert_app"]

MIB = 1024 * 1024
CHUNK = 8 * 1024


def body_of(size: int, alerts: int = 30) -> bytes:
    """A valid version-4 payload of exactly `size` bytes: `alerts` crash-looping pods, padded in an annotation."""
    group = payload(*(alert("KubePodCrashLooping", {"namespace": "prod", "pod": f"api-7c9f8d-p{i}"},
                            fingerprint=f"big{i:04d}") for i in range(alerts)))
    group["commonAnnotations"] = {"padding": ""}
    base = len(json.dumps(group).encode())
    assert base < size
    group["commonAnnotations"]["padding"] = "x" * (size - base)
    raw = json.dumps(group).encode()
    assert len(raw) == size
    return raw


async def slowly(raw: bytes) -> AsyncIterator[bytes]:
    """A slow client: small chunks, the event loop turning between them (chunked transfer encoding)."""
    for start in range(0, len(raw), CHUNK):
        yield raw[start:start + CHUNK]
        await asyncio.sleep(0.0005)


async def post_slowly(url: str, raw: bytes, *, declare_length: bool = False) -> tuple[int, Any, str]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    if declare_length:
        headers["Content-Length"] = str(len(raw))
    async with aiohttp.ClientSession() as session, session.post(url, data=slowly(raw), headers=headers) as response:
        text = await response.text()
        return response.status, json.loads(text), response.content_type


async def test_bodies_of_1_2_and_4_mib_sent_in_small_chunks_are_read_whole(alert_app: tuple[App, str]) -> None:
    app, url = alert_app
    for size, declare in ((1 * MIB, False), (2 * MIB, True), (4 * MIB, False)):
        assert size <= MAX_ALERT_BODY
        status, answer, _ = await post_slowly(url, body_of(size), declare_length=declare)
        assert status == 200, (size, answer)
        outcomes = answer["alerts"]
        assert len(outcomes) == 30 and all(o["error"] is None for o in outcomes), (size, outcomes[:2])
    # Every alert is in the one incident of its group.
    incident = await app.incidents.incident(outcomes[0]["incident_id"])
    assert incident.alert_name == "KubePodCrashLooping" and incident.alert_count == 30


async def test_a_body_over_the_limit_is_413_in_the_json_shape_logged_and_counted(
    alert_app: tuple[App, str],
) -> None:
    _app, url = alert_app
    with structlog.testing.capture_logs() as logs:
        status, answer, content_type = await post_slowly(url, body_of(MAX_ALERT_BODY + 1))
        assert status == 413 and content_type == "application/json", answer
        assert answer["error"] == "body_too_large" and "4 MiB" in answer["message"] and "group_by" in answer["message"]
        # Declared too large up front: refused the same way, without reading it.
        status, answer, _ = await post_slowly(url, body_of(MAX_ALERT_BODY + 1), declare_length=True)
        assert status == 413 and answer["error"] == "body_too_large"
        # Not JSON: 422 with its own code; also an error line.
        status, answer, _ = await post_slowly(url, b'{"version": "4", "alerts": [')
        assert status == 422 and answer["error"] == "invalid_json"
    refused = [entry for entry in logs if entry["event"] == "alerts.webhook_refused"]
    assert [entry["log_level"] for entry in refused] == ["error"] * 3
    assert [entry["error"] for entry in refused] == ["body_too_large", "body_too_large", "invalid_json"]
    async with aiohttp.ClientSession() as session, session.get(url.replace("/api/v1/alerts", "/metrics")) as response:
        metrics = await response.text()
    assert 'signoff_alert_webhooks_refused_total{reason="body_too_large"} 2.0' in metrics
    assert 'signoff_alert_webhooks_refused_total{reason="invalid_json"} 1.0' in metrics
