"""Correlation through the real services, a real database and the sandbox: a storm about one workload is
one incident with one proposal, counted, resolved when all its alerts are; the card says how far it reaches."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from adapters.alertmanager import parse_alertmanager
from adapters.db import tables as t
from bot.bootstrap import App
from testkit.support import make_settings, running_app
from tests.integration.test_learning import alert, payload


def crash(pod: str, fingerprint: str, *, namespace: str = "prod", name: str = "KubePodCrashLooping",
          status: str = "firing", starts: str = "2026-11-27T10:00:00Z") -> dict[str, Any]:
    return alert(name, {"namespace": namespace, "pod": pod, "container": "app"}, fingerprint=fingerprint,
                 status=status, starts=starts)


async def ingest(app: App, *alerts: dict[str, Any]) -> list[Any]:
    return await app.alerts.ingest_alerts(parse_alertmanager(payload(*alerts)))


async def open_incidents(app: App) -> list[Any]:
    return await app.db.read(lambda uow: uow.incidents.list_open(500))


async def requests_of(app: App) -> int:
    return await app.db.read(lambda uow: int(uow.connection.execute(
        sa.select(sa.func.count()).select_from(t.requests)).scalar_one()))


async def test_storm_on_one_workload_is_one_incident_one_proposal(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        app.service.default_places["console"] = "console"
        first = await ingest(app, *(crash(f"api-7c9f8d-p{i}", f"a{i}") for i in range(30)))
        second = await ingest(app, *(crash(f"api-7c9f8d-p{i}", f"a{i}") for i in range(30, 47)))
        assert len({o.incident_id for o in first + second}) == 1
        assert sum(1 for o in first + second if o.request_id) == 1
        [incident] = await open_incidents(app)
        assert (incident.alert_count, incident.pod_count, incident.workload) == (47, 47, "deployment/api")
        assert incident.scope == "47 alerts on 47 pods of deployment/api"
        assert await requests_of(app) == 1
        # Another workload, namespace or alert name is another incident.
        others = await ingest(app, crash("web-7c9f8d-p1", "b1"), crash("api-7c9f8d-p1", "b2", namespace="dev"),
                              crash("api-7c9f8d-p1", "b3", name="KubePodNotReady"))
        assert len({o.incident_id for o in others} | {incident.id}) == 4
        # A repeat (same fingerprint and startsAt) changes nothing.
        again = await ingest(app, *(crash(f"api-7c9f8d-p{i}", f"a{i}") for i in range(47)))
        assert all(o.duplicate and o.incident_id == incident.id for o in again)
        assert (await app.incidents.incident(incident.id)).alert_count == 47
        # One card, and one pending edit that will render the current count: no message per alert.
        request_id = next(o.request_id for o in first if o.request_id)
        kinds = await app.db.read(lambda uow: sorted(str(row[0]) for row in uow.connection.execute(
            sa.select(t.outbox.c.kind).where(t.outbox.c.key == request_id))))
        assert kinds == ["card", "card_update"]
        assert (await app.service.get(request_id)).incident_id == incident.id
        card = await app.dispatcher._render(request_id)
        assert card is not None
        assert any("47 alerts on 47 pods of deployment/api" in field.value for field in card.fields)


async def test_resolves_when_all_alerts_resolved_and_a_later_alert_opens_a_new_incident(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        app.service.default_places["console"] = "console"
        opened = await ingest(app, *(crash(f"api-7c9f8d-p{i}", f"a{i}") for i in range(3)))
        incident_id = opened[0].incident_id
        await ingest(app, crash("api-7c9f8d-p0", "a0", status="resolved"), crash("api-7c9f8d-p1", "a1",
                                                                               status="resolved"))
        assert not (await app.incidents.incident(incident_id)).status.done
        # The same resolve again does not count twice.
        await ingest(app, crash("api-7c9f8d-p0", "a0", status="resolved"))
        assert not (await app.incidents.incident(incident_id)).status.done
        await ingest(app, crash("api-7c9f8d-p2", "a2", status="resolved"))
        assert (await app.incidents.incident(incident_id)).status == "resolved"
        # After it resolved, the same problem is a new incident (a re-fire has a new startsAt).
        later = await ingest(app, crash("api-7c9f8d-p0", "a0", starts="2026-11-27T11:00:00Z"))
        assert later[0].incident_id != incident_id and later[0].request_id is not None


async def test_two_replicas_open_one_incident(database_url: str) -> None:
    """Two processes (two apps on one database) get the same storm at once: one incident, one proposal."""
    import asyncio

    async with running_app(make_settings(database_url)) as one, running_app(make_settings(database_url)) as two:
        for app in (one, two):
            app.service.default_places["console"] = "console"
        batches = await asyncio.gather(
            ingest(one, *(crash(f"api-7c9f8d-p{i}", f"a{i}") for i in range(0, 20))),
            ingest(two, *(crash(f"api-7c9f8d-p{i}", f"a{i}") for i in range(10, 30))),
        )
        outcomes = [o for batch in batches for o in batch]
        assert len({o.incident_id for o in outcomes}) == 1
        assert sum(1 for o in outcomes if o.request_id) == 1
        [incident] = await open_incidents(one)
        assert incident.alert_count == 30 and incident.pod_count == 30


async def test_incidents_command_lists_the_open_incidents(database_url: str) -> None:
    from core.chat.commands import ChatContext
    from core.domain.approvals import Place

    async with running_app(make_settings(database_url)) as app:
        app.service.default_places["console"] = "console"
        ctx = ChatContext(platform="console", account="alice", place=Place(platform="console", channel="console"))
        assert "No open incidents" in (await app.chat.handle("incidents", ctx)).text
        await ingest(app, *(crash(f"api-7c9f8d-p{i}", f"a{i}") for i in range(5)), crash("web-7c9f8d-p1", "w1"))
        text = (await app.chat.handle("incidents", ctx)).text
        assert "2 open incident(s)" in text and "5 alerts on 5 pods of deployment/api" in text
        assert "1 alert on 1 pod of deployment/web" in text
