"""Leader election between replicas over a named lease in the database.

Why: some work must be done by one replica at a time. A Discord gateway session is the case in
point: every session of a bot receives every event, so two connected replicas would each answer
a thread reply or a reaction. The replicas share the database, so a lease row there (the
`LeaseRepository` port) chooses the one.

The rules, with the defaults (TTL 10 s, renewed every 3 s, followers polling every 1 s, a 2 s
safety margin):

- A follower tries to take the lease every `poll_every`; it succeeds once the holder's lease has
  lapsed (the holder died or lost the database) or was released (a clean stop).
- The leader renews it every `renew_every`. It steps down as soon as the database says another
  owner holds the lease, and also when it could not renew in time: once its last lease is
  within `safety` of lapsing, because from then on a follower may take over and two sessions
  must never overlap. A renewal that hangs (database unreachable) is abandoned at that point.
- So a dead leader is replaced within `ttl + poll_every` (11 s) plus the new leader's start-up.

Pure of SDKs: the store and the clock are ports. The lease times come from `clock` (what the
rows hold); the waits between attempts are real time.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import structlog

from core.ports import Clock, Store

log = structlog.get_logger(__name__)

RELEASE_TIMEOUT_S = 5.0


class Leadership:
    """One replica's seat in the election for the lease `name`, as `owner` (unique per process)."""

    def __init__(
        self, store: Store, clock: Clock, *, name: str, owner: str, ttl: float = 10.0, renew_every: float = 3.0,
        poll_every: float = 1.0, safety: float = 2.0,
    ) -> None:
        if not 0 < renew_every < ttl - safety:
            raise ValueError("renew_every must be positive and below ttl - safety: the lease would lapse between "
                             "renewals")
        self.name = name
        self.owner = owner
        self._store = store
        self._clock = clock
        self._ttl = timedelta(seconds=ttl)
        self._renew_every = renew_every
        self._poll_every = poll_every
        self._safety = timedelta(seconds=safety)
        self._until: datetime | None = None  # the end of the lease we last wrote, while we lead

    @property
    def is_leader(self) -> bool:
        return self._until is not None

    def _seconds_left(self) -> float:
        """Real seconds until we must have stepped down (0 when we do not lead)."""
        if self._until is None:
            return 0.0
        return max(0.0, (self._until - self._safety - self._clock.now()).total_seconds())

    async def attempt(self) -> bool:
        """Take or renew the lease once; True while this replica leads.

        Never raises for a database failure: a follower stays a follower, a leader stays leader
        until its lease is within `safety` of lapsing.
        """
        now = self._clock.now()
        until = now + self._ttl
        was_leader = self.is_leader
        # A hanging database must not keep us leading past the point where a follower may take over.
        deadline = asyncio.timeout(self._seconds_left() if was_leader else None)
        try:
            if was_leader and self._seconds_left() <= 0:
                self._lose("lapsed")
                return False
            async with deadline:
                won = await self._acquire(until, now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is unreachable or failed: try again next round
            log.warning("leader.renew_failed" if was_leader else "leader.poll_failed", lease=self.name,
                        owner=self.owner, error=type(exc).__name__)
            if was_leader and (deadline.expired() or self._seconds_left() <= 0):
                self._lose("unrenewed")
            return self.is_leader
        if won:
            if not was_leader:
                log.info("leader.elected", lease=self.name, owner=self.owner)
            self._until = until
        elif was_leader:
            self._lose("taken")
        return self.is_leader

    async def _acquire(self, until: datetime, now: datetime) -> bool:
        name, owner = self.name, self.owner
        return await self._store.write(lambda uow: uow.leases.acquire(name, owner=owner, until=until, now=now))

    def _lose(self, why: str) -> None:
        self._until = None
        log.warning("leader.lost", lease=self.name, owner=self.owner, reason=why)

    async def campaign(self, stop: asyncio.Event) -> bool:
        """Until this replica leads (True) or `stop` is set (False), trying every `poll_every`."""
        while not stop.is_set():
            if await self.attempt():
                return True
            await _wait(stop, self._poll_every)
        return False

    async def hold(self, stop: asyncio.Event) -> bool:
        """Renew while leading: returns False once the lease is lost, True when `stop` is set first."""
        while self.is_leader:
            # Never sleep past the step-down point: a lost lease must be noticed before it lapses.
            if await _wait(stop, max(0.0, min(self._renew_every, self._seconds_left()))):
                return True
            await self.attempt()
        return False

    async def resign(self) -> None:
        """Give the lease up (a clean stop) so that a follower takes over at its next poll."""
        if self._until is None:
            return
        self._until = None
        name, owner = self.name, self.owner
        try:
            # Bounded, so that a stop never hangs on a database that is gone, but not by the renewal period: a
            # busy database may take longer than a short one, and the follower would then wait out the lease.
            async with asyncio.timeout(max(self._renew_every, RELEASE_TIMEOUT_S)):
                await self._store.write(lambda uow: uow.leases.release(name, owner=owner))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the lease then simply lapses
            log.warning("leader.release_failed", lease=self.name, owner=self.owner, error=type(exc).__name__)
            return
        log.info("leader.resigned", lease=self.name, owner=self.owner)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` or until `stop` is set; True when it is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()
