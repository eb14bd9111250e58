"""What one execution costs the database (issue 17, "half the CPU"): the claim commits before the real call and
the outcome after it, and nothing else gets a transaction of its own."""

from __future__ import annotations

from core.domain.approvals import Place, RequestStatus
from core.domain.events import EventType
from core.domain.policy import Person
from testkit.support import make_settings, running_app

CONSOLE = Place(platform="console", channel="console")
ALICE, BOB = Person(name="alice"), Person(name="bob")


async def test_a_verified_restart_takes_four_write_transactions_and_one_read(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        request = await app.service.request("rollout restart deployment/api -n prod", by=ALICE, via="console",
                                            origin=CONSOLE)
        await app.service.sign(request.id, by=BOB, via="console")
        writes, reads = app.db.writes, app.db.reads
        assert await app.execution.run_approved() == 1
        # The claim; the dry run's note with the lease check before the real call; the accepted call
        # (verifying); the verified outcome. One read: the list of approved requests.
        assert (app.db.writes - writes, app.db.reads - reads) == (4, 1)
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.succeeded
        types = [e.type for e in await app.service.timeline(request.id)]
        assert types.index(EventType.claimed) < types.index(EventType.dry_run) < types.index(EventType.executed)


async def test_a_scale_reads_its_fresh_floor_without_an_extra_transaction(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        request = await app.service.request("scale deployment/api --replicas=3 -n prod", by=ALICE, via="console",
                                            origin=CONSOLE)
        await app.service.sign(request.id, by=BOB, via="console")
        writes, reads = app.db.writes, app.db.reads
        assert await app.execution.run_approved() == 1
        assert (app.db.writes - writes, app.db.reads - reads) == (4, 1)
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded
