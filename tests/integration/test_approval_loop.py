"""The approval loop through the real services, a real SQLite file and the sandbox API server."""

from __future__ import annotations

import asyncio
from io import StringIO

import pytest
import sqlalchemy as sa

from adapters.db import tables
from adapters.db.database import SqlUnitOfWork
from bot.bootstrap import App
from bot.database import audit_verify
from core.domain import approvals, lifecycle
from core.domain.approvals import Place, RequestStatus
from core.domain.events import EventType
from core.domain.policy import Person, Risk
from core.errors import AlreadySigned, NotFound, NotPending, ParseError, PolicyViolation, SelfApprovalForbidden
from testkit.support import MovableClock, make_settings, running_app

MANY_SIGNERS = """
[risk.high]
quorum = 3
approvers = ["*"]
"""


CONSOLE = Place(platform="console", channel="console")


def person(name: str) -> Person:
    return Person(name=name)


def sandbox_of(app: object) -> object:
    return app.sandbox


async def table_count(app: App, table: sa.Table) -> int:
    return await app.db.read(
        lambda uow: int(uow.connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()))


async def test_request_sign_execute_once_and_timeline(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        request = await app.service.request("rollout restart deployment/api -n prod", by=person("alice"),
                                            via="console", risk=Risk.high, reason="slow")
        assert request.id == "R-1"
        assert request.quorum == 2
        assert request.blast is not None and request.blast.pods == 3 and "api" in request.blast.services
        with pytest.raises(SelfApprovalForbidden):
            await app.service.sign("R-1", by=person("alice"), via="console")
        await app.service.sign("R-1", by=person("bob"), via="console")
        with pytest.raises(AlreadySigned):
            await app.service.sign("R-1", by=person("bob"), via="slack")
        approved = await app.service.sign("R-1", by=person("carol"), via="discord")
        assert approved.status is RequestStatus.approved
        await app.settle()
        done = await app.service.get("R-1")
        assert done.status is RequestStatus.succeeded
        assert done.outcome is not None and done.outcome.dry_run == "passed"
        types = [e.type for e in await app.service.timeline("R-1")]
        assert types == [EventType.requested, EventType.refused, EventType.signed, EventType.refused,
                         EventType.signed, EventType.approved, EventType.claimed, EventType.dry_run,
                         EventType.executed, EventType.verified]
        deployment = app.sandbox.get("deployment", "prod", "api")  # type: ignore[attr-defined]
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert "kubectl.kubernetes.io/restartedAt" in annotations


async def test_unparsable_action_stores_nothing(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        with pytest.raises(ParseError, match="Accepted forms"):
            await app.service.request("kubectl exec -it api -- sh", by=person("alice"), via="console")
        with pytest.raises(PolicyViolation, match="50 or fewer"):
            await app.service.request("scale deployment/web --replicas=500 -n prod", by=person("alice"),
                                      via="console")
        assert await table_count(app, tables.requests) == 0
        assert await table_count(app, tables.timeline) == 0
        assert await table_count(app, tables.outbox) == 0
        with pytest.raises(NotFound, match="no request R-99"):
            await app.service.sign("R-99", by=person("bob"), via="console")


async def test_fifty_concurrent_signatures_reach_quorum_once_and_execute_once(database_url: str) -> None:
    async with running_app(make_settings(database_url), policy=MANY_SIGNERS) as app:
        await app.service.request("rollout restart deployment/web -n prod", by=person("alice"), via="console",
                                  risk=Risk.high)
        results = await asyncio.gather(
            *(app.service.sign("R-1", by=person(f"signer{i}"), via="slack") for i in range(50)),
            return_exceptions=True,
        )
        accepted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, NotPending)]
        assert len(accepted) == 3
        assert len(refused) == 47
        assert [r.status for r in accepted].count(RequestStatus.approved) == 1
        assert await table_count(app, tables.signatures) == 3
        # Several workers race for the claim; the database lets exactly one through.
        executions = await asyncio.gather(*(app.execution.execute("R-1") for _ in range(10)))
        assert executions.count(True) == 1
        await app.settle()
        events = await app.service.timeline("R-1")
        assert [e.type for e in events].count(EventType.approved) == 1
        assert [e.type for e in events].count(EventType.executed) == 1
        real_patches = [r for r in app.sandbox.requests  # type: ignore[attr-defined]
                        if r[0] == "PATCH" and "deployments/web" in r[1] and "dryRun" not in str(r[2])]
        assert len(real_patches) == 1


async def test_audit_verify_detects_altered_inserted_deleted_and_reordered_events(database_url: str) -> None:
    settings = make_settings(database_url)
    async with running_app(settings) as app:
        await app.service.request("rollout restart deployment/api -n prod", by=person("alice"), via="console")
        await app.service.sign("R-1", by=person("bob"), via="console")
        await app.settle()
        assert len(await app.service.timeline("R-1")) >= 5

    async def verify() -> tuple[int, str]:
        out = StringIO()
        code = await audit_verify(settings, out)
        return code, out.getvalue()

    code, text = await verify()
    assert code == 0 and "intact" in text

    from adapters.db.database import Database
    db = Database(database_url)

    async def tamper(statement: str) -> None:
        await db.write(lambda uow: uow.connection.execute(sa.text(statement)))

    original = await db.read(
        lambda uow: uow.connection.execute(sa.text("SELECT actor FROM timeline WHERE seq = 3")).scalar_one())
    await tamper("UPDATE timeline SET actor = 'mallory' WHERE seq = 3")
    code, text = await verify()
    assert code == 1 and "event 3" in text and "altered" in text
    await tamper(f"UPDATE timeline SET actor = '{original}' WHERE seq = 3")
    assert (await verify())[0] == 0

    await tamper("UPDATE timeline SET seq = 100 WHERE seq = 2")
    await tamper("UPDATE timeline SET seq = 2 WHERE seq = 3")
    await tamper("UPDATE timeline SET seq = 3 WHERE seq = 100")
    code, text = await verify()
    assert code == 1 and "event 2" in text
    await tamper("UPDATE timeline SET seq = 100 WHERE seq = 2")
    await tamper("UPDATE timeline SET seq = 2 WHERE seq = 3")
    await tamper("UPDATE timeline SET seq = 3 WHERE seq = 100")
    assert (await verify())[0] == 0

    # An event slipped in between 2 and 3, renumbering what follows: its prev_hash cannot fit both ends.
    last = await db.read(lambda uow: uow.connection.execute(sa.text("SELECT max(seq) FROM timeline")).scalar_one())
    for seq in range(last, 2, -1):
        await tamper(f"UPDATE timeline SET seq = {seq + 1} WHERE seq = {seq}")
    await tamper("INSERT INTO timeline (seq, at, type, status, title, detail, actor, actor_role, request_id, "
                 "incident_id, prev_hash, hash) SELECT 3, at, 'signed', status, 'mallory signed', '', 'mallory', "
                 "'approver', request_id, incident_id, hash, hash FROM timeline WHERE seq = 2")
    code, text = await verify()
    assert code == 1 and "event 3" in text
    await tamper("DELETE FROM timeline WHERE seq = 3")
    for seq in range(4, last + 2):
        await tamper(f"UPDATE timeline SET seq = {seq - 1} WHERE seq = {seq}")
    assert (await verify())[0] == 0

    await tamper("DELETE FROM timeline WHERE seq = 2")
    code, text = await verify()
    assert code == 1 and "event 3" in text
    await db.dispose()


async def test_restart_runs_fresh_approvals_expires_stale_ones_and_interrupts_in_flight(database_url: str) -> None:
    clock = MovableClock()
    settings = make_settings(database_url)
    async with running_app(settings, clock=clock) as app:
        for action in ("rollout restart deployment/api -n prod", "rollout restart deployment/web -n prod",
                       "rollout restart deployment/worker -n prod"):
            await app.service.request(action, by=person("alice"), via="console", origin=CONSOLE)
        for request_id in ("R-1", "R-2", "R-3"):
            await app.service.sign(request_id, by=person("bob"), via="console")
        # R-3 was mid-flight when the process died: claimed, but no outcome recorded.
        def die_mid_flight(uow: SqlUnitOfWork) -> None:
            r3 = uow.requests.get("R-3")
            assert r3 is not None
            claimed = lifecycle.claimed(r3, worker="dead-process", at=clock.now())
            assert uow.requests.claim(claimed.request, expected_version=r3.version, worker="dead-process",
                                      lease_until=clock.now())
            uow.timeline.append(claimed.events)

        await app.db.write(die_mid_flight)

        # R-2's approval is older than the expiry window when the process comes back.
        def age_approval(uow: SqlUnitOfWork) -> None:
            r2 = uow.requests.get("R-2")
            assert r2 is not None and r2.approved_at is not None
            old = r2.model_copy(update={"approved_at": r2.approved_at.replace(year=2020), "version": r2.version + 1})
            uow.requests.update(old, expected_version=r2.version)

        await app.db.write(age_approval)

    async with running_app(settings, clock=clock) as app:
        counts = await app.maintenance.recover(sole_worker=app.db.sole_worker)
        assert counts == {"expired": 1, "interrupted": 1}
        await app.settle()
        assert (await app.service.get("R-1")).status is RequestStatus.succeeded
        assert (await app.service.get("R-2")).status is RequestStatus.expired
        assert (await app.service.get("R-3")).status is RequestStatus.interrupted
        r3_events = [e.type for e in await app.service.timeline("R-3")]
        assert r3_events[-1] is EventType.interrupted and EventType.executed not in r3_events
        due = await app.db.read(lambda uow: uow.outbox.due(clock.now(), limit=1000))
        texts = [m.text for m in due if m.key in ("R-2", "R-3") and m.text]
        assert any("stale approval" in t for t in texts)
        assert any("interrupted" in t for t in texts)


async def test_sweep_expires_pending_requests(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        await app.service.request("cordon node-1", by=person("alice"), via="console")
        assert await app.maintenance.sweep() == {"expired": 0, "interrupted": 0}
        clock.advance(minutes=31)
        assert await app.maintenance.sweep() == {"expired": 1, "interrupted": 0}
        request = await app.service.get("R-1")
        assert request.status is RequestStatus.expired
        with pytest.raises(NotPending):
            await app.service.sign("R-1", by=person("bob"), via="console")


async def test_a_typed_comment_is_kept_with_the_signature_and_runs_as_signed(database_url: str) -> None:
    from core.chat.commands import ChatContext
    settings = make_settings(database_url)
    async with running_app(settings) as app:
        await app.service.request("rollout restart deployment/api -n prod", by=person("alice"), via="console")
        bob = ChatContext(platform="console", account="bob", place=CONSOLE)
        too_long = await app.chat.handle(f'approve R-1 comment="{"x" * 501}"', bob)
        assert not too_long.ok and "at most 500 characters" in too_long.text
        assert (await app.service.get("R-1")).signatures == ()
        reply = await app.chat.handle('approve R-1 comment="checked the <dashboards> & logs"', bob)
        assert reply.ok and reply.text.startswith("✍️ You signed R-1")
        request = await app.service.get("R-1")
        assert [(s.person, s.comment) for s in request.signatures] == [("bob", "checked the <dashboards> & logs")]
        signed = [e for e in await app.service.timeline("R-1") if e.type is EventType.signed]
        assert [e.detail for e in signed] == ["via console: checked the <dashboards> & logs"]
        assert signed[0].digest == approvals.signed_digest(request)
        await app.settle()
        # The comment is not part of what was signed: the stored request still matches, so it ran.
        assert (await app.service.get("R-1")).status is RequestStatus.succeeded
    code = await audit_verify(settings, StringIO())
    assert code == 0
