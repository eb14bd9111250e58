"""Named leases between replicas: one owner at a time, renewed by the owner, taken over once lapsed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.db.database import Database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_one_owner_until_the_lease_lapses(database_url: str) -> None:
    db = Database(database_url)
    await db.upgrade()
    try:
        async def acquire(owner: str, at: datetime) -> bool:
            return await db.write(lambda uow: uow.leases.acquire("discord", owner=owner, until=at + timedelta(
                seconds=15), now=at))

        assert await acquire("a", T0)
        assert not await acquire("b", T0 + timedelta(seconds=5))
        assert await acquire("a", T0 + timedelta(seconds=10))  # the owner renews
        assert not await acquire("b", T0 + timedelta(seconds=20))  # renewed until 25 s
        assert await db.read(lambda uow: uow.leases.holder("discord", T0 + timedelta(seconds=20))) == "a"
        assert await acquire("b", T0 + timedelta(seconds=26))  # lapsed: taken over
        assert not await acquire("a", T0 + timedelta(seconds=27))
        await db.write(lambda uow: uow.leases.release("discord", owner="b"))
        assert await acquire("a", T0 + timedelta(seconds=28))
    finally:
        await db.dispose()
