"""A proposal nobody signed, for an alert that resolved on its own (issue 20, item 5), through Alertmanager's
webhook into the HTTP API, with the console as the chat: the proposal is cancelled ("the alert resolved on its
own", in the thread and the timeline, with the resolution time) unless `[incidents] cancel_when_resolved =
false` keeps it, and nobody is asked to rate a fix that never ran. A fix that ran still gets the prompt."""

from __future__ import annotations

from io import StringIO

import pytest
from aiohttp.test_utils import TestServer

from bot.chats.console import attach_console
from bot.http import build_http_app
from core.domain.approvals import RequestStatus
from core.domain.events import EventType
from core.domain.policy import Person
from testkit.support import MovableClock, make_settings, running_app
from tests.integration.test_learning import TOKEN, alert, api_pod, payload, post_alerts


@pytest.mark.parametrize("cancel", [True, False])
async def test_an_unsigned_proposal_for_an_alert_that_resolved(sqlite_database_url: str, cancel: bool) -> None:
    policy = "" if cancel else "[incidents]\ncancel_when_resolved = false\n"
    clock = MovableClock()
    settings = make_settings(sqlite_database_url, SIGNOFF_API_TOKEN=TOKEN)
    async with running_app(settings, policy=policy or None, clock=clock) as app:
        transcript = StringIO()
        attach_console(app, transcript)
        server = TestServer(build_http_app(app))
        await server.start_server()
        try:
            url = str(server.make_url("/api/v1/alerts"))
            labels = {"namespace": "prod", "pod": api_pod(app), "container": "api"}
            status, body = await post_alerts(url, payload(alert("KubePodCrashLooping", labels, fingerprint="f1")))
            assert status == 200, body
            request_id = body["alerts"][0]["request_id"]
            assert (await app.service.get(request_id)).status is RequestStatus.pending
            clock.advance(minutes=3)
            status, body = await post_alerts(url, payload(alert("KubePodCrashLooping", labels, fingerprint="f1",
                                                                status="resolved")))
            assert status == 200, body
            await app.settle()
        finally:
            await server.close()
        request = await app.service.get(request_id)
        said = transcript.getvalue()
        assert "Rate the fix" not in said and "resolve INC-" not in said
        assert "resolved on its own; no fix by signoff ran, so there is nothing to rate" in said, said
        if cancel:
            assert request.status is RequestStatus.cancelled and request.decided_by == "alertmanager"
            assert f"{request_id} cancelled: the alert KubePodCrashLooping resolved on its own at" in said
            (event,) = [e for e in await app.service.timeline(request_id) if e.type is EventType.cancelled]
            assert "resolved on its own" in event.title
            assert f"{clock.now():%Y-%m-%d %H:%M:%S} UTC" in event.detail
        else:
            assert request.status is RequestStatus.pending
            assert "stays pending (`[incidents] cancel_when_resolved = false`)" in said


async def test_a_fix_that_ran_still_gets_the_rating_prompt(sqlite_database_url: str) -> None:
    settings = make_settings(sqlite_database_url, SIGNOFF_API_TOKEN=TOKEN)
    async with running_app(settings) as app:
        transcript = StringIO()
        attach_console(app, transcript)
        server = TestServer(build_http_app(app))
        await server.start_server()
        try:
            url = str(server.make_url("/api/v1/alerts"))
            labels = {"namespace": "prod", "pod": api_pod(app), "container": "api"}
            status, body = await post_alerts(url, payload(alert("KubePodCrashLooping", labels, fingerprint="f1")))
            request_id = body["alerts"][0]["request_id"]
            await app.service.sign(request_id, by=Person(name="bob"), via="console")
            await app.settle()
            assert (await app.service.get(request_id)).status is RequestStatus.succeeded
            status, body = await post_alerts(url, payload(alert("KubePodCrashLooping", labels, fingerprint="f1",
                                                                status="resolved")))
            assert status == 200, body
            await app.settle()
        finally:
            await server.close()
        said = transcript.getvalue()
        assert "resolved" in said and request_id in said
        assert "nothing to rate" not in said
        assert "resolve INC-1 score=" in said, said
