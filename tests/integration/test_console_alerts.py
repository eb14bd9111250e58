"""The console's `alert` line goes the webhook's way: an Alertmanager payload, parsed as the webhook parses it
(wired by the composition root), each refused alert told to the person and nothing stored for it."""

from __future__ import annotations

from io import StringIO

from bot.chats.console import attach_console
from testkit.support import make_settings, running_app


async def test_a_console_alert_opens_an_incident(sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url)) as app:
        transcript = StringIO()
        console = attach_console(app, transcript)
        assert await console.line('alert KubePodCrashLooping namespace=prod pod=api-1 description="crash"')
        (incident,) = await app.db.read(lambda uow: uow.incidents.list_open())
        assert incident.alert_name == "KubePodCrashLooping"
        assert incident.labels["pod"] == "api-1"
        assert "🚨 Alertmanager: KubePodCrashLooping firing namespace=prod pod=api-1" in transcript.getvalue()


async def test_a_console_alert_the_webhook_would_refuse_is_refused_with_its_reason(sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url)) as app:
        transcript = StringIO()
        console = attach_console(app, transcript)
        # The alert name is a lone NUL: cleaned, it is empty, so the alert has no name.
        assert await console.line('alert "\x00" namespace=prod')
        assert "An alert needs an `alertname` label; this one was skipped." in transcript.getvalue()
        assert await app.db.read(lambda uow: uow.incidents.list_open()) == []
