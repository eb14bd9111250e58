"""The outbox dispatcher: delivers stored chat messages, in order, at least once, retrying forever.

Messages for one card (same platform and key) go out in the order they were stored, so a
card exists before its updates and replies; only a card update held back by the pace limit
lets later replies pass it. Card updates re-render the request's current
state, so several queued updates collapse into one call, at most one per card per
`min_update_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

import structlog

from core.app.delivery_book import Booking, Bookings, book
from core.app.delivery_digest import write_digest
from core.app.delivery_plan import Anchors, Claim, Job, lane_key, new_card
from core.app.metrics import Metrics
from core.app.signals import Signals
from core.chat.cards import Card, request_card
from core.chat.messages import DeliveryError, MessageKind, MessageRef, OutboxMessage
from core.domain.ids import RequestId, stored_key
from core.ports import ChatGateway, Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 300.0
PERMANENT_ATTEMPTS = 5
MIN_PASS_GAP_S = 0.01
PER_LANE = 20  # at most this many of one card's messages per pass: cards waiting for their post leave room
# Flood control (one digest per channel per minute): how often a process looks for one that is due.
DIGEST_CHECK = timedelta(seconds=30)


class OutboxDispatcher:
    def __init__(
        self, *, store: Store, clock: Clock, signals: Signals, gateways: Mapping[str, ChatGateway],
        owner: str | None = None, min_update_interval: float = 1.0, lease: timedelta = timedelta(seconds=60),
        metrics: Metrics | None = None, concurrency: int = 8, max_new_cards_per_minute: int = 10,
        sole_worker: bool = False,
    ) -> None:
        self._store = store
        self._bookings = Bookings(store, clock)
        self._sole_worker = sole_worker  # no other process delivers (SQLite): pacing needs no postponing write
        self._concurrency = concurrency
        self._metrics = metrics or Metrics()
        self._clock = clock
        self._signals = signals
        self.gateways = dict(gateways)
        self._owner = owner or uuid.uuid4().hex[:12]
        self._min_update_interval = min_update_interval
        self._lease = lease
        self._last_update: dict[tuple[str, str], datetime] = {}
        self._anchors = Anchors()
        self.delivered = self.surveyed = 0  # surveyed: the due messages the passes read
        self.failures = 0
        self._card_budget = max_new_cards_per_minute
        self._next_digest_check: dict[str, datetime] = {}
        self.held_back = 0
        self._nudged: set[str] = set()  # platforms woken because messages were queued since their last pass

    async def run(self, interval: float = 0.25) -> None:
        """Deliver until cancelled, each platform in its own lane: a platform whose calls hang holds back
        only its own messages. Every lane passes when the outbox is woken, and at least every `interval`."""
        wakes: dict[str, asyncio.Event] = {}
        tasks: dict[str, asyncio.Task[None]] = {}
        async with asyncio.TaskGroup() as group:
            while True:
                for platform in tuple(self.gateways):
                    if platform not in tasks or tasks[platform].done():
                        wakes[platform] = asyncio.Event()
                        tasks[platform] = group.create_task(self._lane_loop(platform, wakes[platform], interval))
                for wake in wakes.values():
                    wake.set()
                if await self._signals.outbox.wait(interval):
                    self._nudged.update(wakes)

    async def _lane_loop(self, platform: str, wake: asyncio.Event, interval: float) -> None:
        """One platform's deliveries, until its gateway is taken out (`run` starts another when it is back).

        A pass does not wait for the previous one's calls (a new card goes out while another card's update is
        on its way); a card whose messages are in flight is left out of the next claim, so they keep their order.
        """
        gate = asyncio.Semaphore(self._concurrency)
        busy: set[str] = set()
        behind: set[str] = set()  # busy cards with due messages left out of a pass
        full = False  # the last pass took all it may: more may be due

        async def lane(key: str, jobs: list[Job]) -> None:
            try:
                async with gate:
                    sent = await self._run_lane(platform, jobs)  # (`+= await` would add to a stale count)
                    self.delivered += sent
            finally:
                busy.discard(key)
                if key in behind or full:  # what waited behind this card may go now (else: no pass for nothing)
                    behind.discard(key)
                    wake.set()

        async with asyncio.TaskGroup() as lanes:
            while platform in self.gateways:
                wake.clear()
                try:
                    fresh, full = platform in self._nudged, False
                    self._nudged.discard(platform)
                    claim = await self._claim_pass(platform, 200, frozenset(busy), fresh=fresh)
                    behind.update(claim.behind)
                    full = claim.full
                    self.delivered += len(claim.settled)
                    for jobs in claim.lanes:
                        key = lane_key(jobs[0].message)
                        busy.add(key)
                        lanes.create_task(lane(key, jobs))
                except Exception:
                    # One bad pass must not stop the lane; the next pass retries from the database.
                    log.exception("outbox.pass_failed", platform=platform)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await wake.wait()
                await asyncio.sleep(MIN_PASS_GAP_S)  # wake-ups in a burst make one pass, not one each

    async def run_once(self, limit: int = 200) -> int:
        """One pass for every platform, side by side; returns how many messages were delivered."""
        results = await asyncio.gather(*(self.run_platform(p, limit) for p in tuple(self.gateways)),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("outbox.pass_failed", error=f"{type(result).__name__}: {result}")
            elif isinstance(result, BaseException):
                raise result
        return sum(r for r in results if isinstance(r, int))

    async def run_platform(self, platform: str, limit: int = 200) -> int:
        """One pass over one platform's due messages, to the end of its calls; returns how many were delivered.

        One write transaction claims the pass (leases, anchors, rendered cards, what needs no call), then
        each message costs its call and one write. Each card's messages go out one after another;
        different cards go out side by side, at most `concurrency` at a time per platform.
        """
        claim = await self._claim_pass(platform, limit, frozenset())
        gate = asyncio.Semaphore(self._concurrency)
        counts = [len(claim.settled)]

        async def lane(jobs: list[Job]) -> None:
            async with gate:
                sent = await self._run_lane(platform, jobs)  # (`+= await` would add to a stale count)
                counts[0] += sent

        async with asyncio.TaskGroup() as group:
            for jobs in claim.lanes:
                group.create_task(lane(jobs))
        self.delivered += counts[0]
        return counts[0]

    async def _claim_pass(self, platform: str, limit: int, busy: frozenset[str], *, fresh: bool = False) -> Claim:
        """`fresh`: messages were queued since the last pass, so it most likely has work: the survey goes in the
        claim's write (one transaction). Else the survey is a read, and a pass that finds nothing writes nothing."""
        now = self._clock.now()
        if now >= self._next_digest_check.get(platform, now) and await self._digests(now, platform):
            now = self._clock.now()  # the digest just stored is due in this pass
        self._forget_paced(now)
        survey = None
        if not fresh:
            survey = await self._store.read(functools.partial(self._survey, platform=platform, now=now, limit=limit,
                                                              busy=busy))
            self._anchors.remember(survey.anchors)
            if not survey.lanes and not survey.postponed and not survey.settled:
                return survey  # nothing due: no write
        with self._bookings.carried() as bookings:  # lanes' bookings waiting for a write go in this one
            claim = await self._store.write(functools.partial(self._claim, survey=survey, platform=platform, now=now,
                                                              limit=limit, busy=busy, bookings=bookings))
        self._anchors.remember(claim.anchors)
        for message in claim.held_back:
            self._held_back(message, now)
        return claim

    async def _run_lane(self, platform: str, jobs: list[Job]) -> int:
        try:
            return await self._lane(platform, jobs)
        except Exception:
            # One lane fails alone (a database error while booking it): cancelling the others mid-call
            # would re-send what they had delivered but not yet booked.
            log.exception("outbox.lane_crashed", platform=platform, key=jobs[0].message.key)
            return 0

    @property
    def pacing_entries(self) -> int:
        return len(self._last_update)

    def _forget_paced(self, now: datetime) -> None:
        """Forgets the cards whose last update is older than the pace: the map holds only those paced now."""
        horizon = now - timedelta(seconds=self._min_update_interval)
        for key in [k for k, at in self._last_update.items() if at <= horizon]:
            del self._last_update[key]

    # ---- the claim: one write transaction per pass

    def _survey(self, uow: UnitOfWork, *, platform: str, now: datetime, limit: int, busy: frozenset[str]) -> Claim:
        """Read what the pass's deliveries need (a read, off the writer): each card's anchor, the cards to
        post or update to, the updates an update coalesces; which messages wait, and which need no call."""
        claim = Claim()
        lanes: dict[str, list[OutboxMessage]] = {}
        # Paced updates are not read again every pass (SQLite; PostgreSQL postpones them by a write)
        paced = [key for (on, key), at in self._last_update.items() if on == platform] if self._sole_worker else []
        due = uow.outbox.due(now, limit, platforms=(platform,), per_lane=PER_LANE, paced=paced)
        self.surveyed += len(due)
        claim.full = len(due) >= limit
        for message in due:
            if lane_key(message) in busy:  # its card's earlier messages are still on their way
                claim.behind.add(lane_key(message))
            else:
                lanes.setdefault(lane_key(message), []).append(message)
        claim.behind.update(key for key, messages in lanes.items() if len(messages) >= PER_LANE)  # and more may be
        for messages in lanes.values():
            key = messages[0].key
            anchor: MessageRef | None = None
            looked = key is None  # the anchor is read once a message needs it: a paced update does not
            posting = False  # the key's card is posted earlier in this lane: later messages go in its thread
            jobs: list[Job] = []
            for message in messages:
                postpone = self._update_too_soon(message, now)
                if postpone is not None:
                    # A card update waiting for the platform's pace must not hold back the thread's replies:
                    # the card exists already, and the update renders the latest state when it goes.
                    if not self._sole_worker:  # else it stays due: another process would send it too soon
                        claim.postponed.append((message.id, postpone))
                    continue
                if any(message.id in job.coalesced for job in jobs):
                    continue  # goes with an update already claimed
                if not looked:
                    assert key is not None
                    anchor, looked = self._anchors.read(uow, key, platform, claim), True
                if not posting and anchor is None and key is not None and message.kind is not MessageKind.card \
                        and uow.outbox.card_pending(platform, key):
                    # The card is not out yet (its post is being retried, or is leased by a process that
                    # died): updates and replies wait for it instead of going out without their thread.
                    claim.postponed.append((message.id, now + timedelta(seconds=1)))
                    break
                job = self._prepare(uow, message, anchor, posting)
                if job is None:
                    claim.settled.append(message.id)
                    continue
                posting = posting or message.kind is MessageKind.card
                jobs.append(job)
            if jobs:
                claim.lanes.append(jobs)
        return claim

    def _claim(self, uow: UnitOfWork, *, survey: Claim | None, platform: str, now: datetime, limit: int,
               busy: frozenset[str], bookings: list[Booking]) -> Claim:
        """Lease what the survey found (None: survey now), spend the flood budget, book what needs no call and
        what other lanes delivered meanwhile (a short write). Runs whole again on a write conflict, so it
        changes nothing outside the transaction."""
        book(uow, bookings, now)
        found = survey if survey is not None else self._survey(uow, platform=platform, now=now, limit=limit, busy=busy)
        claim = Claim(settled=list(found.settled), behind=found.behind, full=found.full, anchors=found.anchors)
        until = now + self._lease
        for message_id, at in found.postponed:
            uow.outbox.retry_later(message_id, at=at, error="", count_attempt=False)
        for jobs in found.lanes:
            leased: list[Job] = []
            unposted = False  # the lane's card went to the digest: its updates and direct messages have no card
            for job in jobs:
                message, key = job.message, job.message.key
                if not uow.outbox.lease(message.id, owner=self._owner, until=until, now=now):
                    break  # another process has it: the rest of the card's messages wait
                if unposted and message.kind in (MessageKind.card_update, MessageKind.direct):
                    claim.settled.append(message.id)
                elif job.anchor is None and key is not None and new_card(message) and not leased \
                        and not uow.channel_cards.take(platform, message.channel, key, message_id=message.id,
                                                       now=now, limit=self._card_budget):
                    claim.held_back.append(message)  # listed in the channel's next digest instead
                    claim.settled.append(message.id)
                    unposted = unposted or message.kind is MessageKind.card
                else:
                    leased.append(dataclasses.replace(job, leased_until=until))
            if leased:
                claim.lanes.append(leased)
        uow.outbox.delivered(claim.settled, now)
        return claim

    def _prepare(self, uow: UnitOfWork, message: OutboxMessage, anchor: MessageRef | None,
                 posting: bool) -> Job | None:
        """What delivering `message` takes; None when it needs no call (settled in the claim)."""
        kind = message.kind
        if kind is MessageKind.card:
            if anchor is not None:
                return None  # already posted by an earlier attempt
            card = message.card or self._render_in(uow, message.key)
            if card is None:
                return None
            if message.mentions:
                card = card.model_copy(update={"mentions": message.mentions})
            return Job(message, None, card)
        if kind is MessageKind.card_update:
            if (anchor is None and not posting) or message.key is None:
                return None  # the card was never posted; nothing to update
            if message.card is not None:  # a message carrying its own card (a progress note): edited as is
                return Job(message, anchor, message.card)
            ids = uow.outbox.pending_updates(message.platform, message.key)
            return Job(message, anchor, self._render_in(uow, message.key), tuple(i for i in ids if i != message.id))
        if kind is MessageKind.direct and anchor is None and not posting:
            return None  # a card that was never posted has nothing to link to
        return Job(message, anchor)

    # ---- delivering a claimed lane

    async def _lane(self, platform: str, jobs: list[Job]) -> int:
        delivered = 0
        anchor: MessageRef | None = None  # the card posted in this lane, for the messages after it
        for n, job in enumerate(jobs):
            gateway = self.gateways.get(platform)
            if gateway is None or not await self._keep_lease(job):
                await self._release(jobs[n:])  # another process (or a later start) delivers them
                break
            message = job.message
            try:
                anchor = await self._deliver(gateway, job, job.anchor or anchor)
            except DeliveryError as exc:
                await self._failed(message, exc)
                await self._release(jobs[n + 1:])
                break
            except Exception as exc:  # an adapter bug must not stop every other message
                log.exception("outbox.delivery_crashed", message_id=message.id, platform=message.platform)
                await self._failed(message, DeliveryError(f"{type(exc).__name__}: {exc}"))
                await self._release(jobs[n + 1:])
                break
            delivered += 1
        return delivered

    async def _keep_lease(self, job: Job) -> bool:
        """A lane that has waited half its lease on slow calls renews it before the next call."""
        now = self._clock.now()
        if job.leased_until is None or now < job.leased_until - self._lease / 2:
            return True
        until = now + self._lease
        return await self._store.write(
            lambda uow: uow.outbox.lease(job.message.id, owner=self._owner, until=until, now=now))

    async def _release(self, jobs: list[Job]) -> None:
        if jobs:
            ids = [job.message.id for job in jobs]
            await self._store.write(lambda uow: uow.outbox.release(ids, owner=self._owner))

    async def _deliver(self, gateway: ChatGateway, job: Job, anchor: MessageRef | None) -> MessageRef | None:
        """Sends one claimed message and books it (committed, maybe with other lanes' bookings, before the card's
        next message goes); returns the lane's anchor from now on."""
        message, kind = job.message, job.message.kind
        if kind is MessageKind.card:
            assert job.card is not None
            ref = await gateway.post_card(message.channel, job.card, token=message.token, retry=message.uncertain)
            await self._bookings.book([message.id], anchors={message.key or "": ref})
            return ref
        if kind is MessageKind.card_update:
            assert anchor is not None and message.key is not None
            if job.card is not None:
                await gateway.update_card(anchor, job.card)
            self._last_update[(message.platform, message.key)] = self._clock.now()
            await self._bookings.book(sorted({*job.coalesced, message.id}))
            return anchor
        if kind is MessageKind.direct:
            assert anchor is not None
            await gateway.post_direct(message.channel, message.text, anchor)
            await self._bookings.book([message.id])
            return anchor
        mentions = message.mentions or None
        if kind is MessageKind.thread and anchor is not None:
            ref = await gateway.post_reply(anchor, message.text, message.card, mentions=mentions, token=message.token,
                                           retry=message.uncertain)
        else:
            ref = await gateway.post_message(message.channel, message.text, message.card, mentions=mentions,
                                             token=message.token, retry=message.uncertain)
        # A message anchored under its own key (a playbook offer) is found by its id only, so a
        # thread keeps belonging to the request whose card opened it.
        anchors = {message.anchor_as: ref.model_copy(update={"thread": None})} if message.anchor_as else {}
        await self._bookings.book([message.id], anchors=anchors)
        return anchor

    def _update_too_soon(self, message: OutboxMessage, now: datetime) -> datetime | None:
        if message.kind is not MessageKind.card_update or message.key is None:
            return None
        last = self._last_update.get((message.platform, message.key))
        if last is None:
            return None
        ready = last + timedelta(seconds=self._min_update_interval)
        return ready if now < ready else None

    def _held_back(self, message: OutboxMessage, now: datetime) -> None:
        self.held_back += 1
        self._next_digest_check[message.platform] = now  # the next pass looks whether a digest is due
        self._metrics.inc("signoff_cards_held_back_total", platform=message.platform)
        log.info("outbox.card_held_back", platform=message.platform, channel=message.channel, key=message.key)

    async def _digests(self, now: datetime, only: str) -> int:
        """One digest message per channel per minute for the cards the budget held back (any replica's)."""
        self._next_digest_check[only] = now + DIGEST_CHECK
        waiting = await self._store.read(lambda uow: uow.channel_cards.waiting())
        sent = 0
        for platform, channel in waiting:
            if platform != only:
                continue
            count = await self._store.write(functools.partial(write_digest, platform=platform, channel=channel,
                                                              now=now, limit=self._card_budget))
            if count:
                log.info("outbox.digest", platform=platform, channel=channel, items=count)
                sent += 1
            else:
                # Not due yet: look again when it may be.
                self._next_digest_check[only] = min(self._next_digest_check[only], now + timedelta(seconds=5))
        return sent

    async def _render(self, key: str | None) -> Card | None:
        """The card of `key` as it would be posted now."""
        return await self._store.read(lambda uow: self._render_in(uow, key))

    def _render_in(self, uow: UnitOfWork, key: str | None) -> Card | None:
        request_id = stored_key(key)
        if not isinstance(request_id, RequestId):
            return None  # only a request has a card to re-render
        request = uow.requests.get(request_id)
        if request is None:
            return None
        incident = uow.incidents.get(request.incident_id) if request.incident_id else None
        # A correlated incident's card says how far the problem reaches; a single alert needs no count.
        scope = incident.scope if incident is not None and incident.alert_count > 1 else None
        return request_card(request, self._clock.now(), scope)

    async def _failed(self, message: OutboxMessage, exc: DeliveryError) -> None:
        self.failures += 1
        self._metrics.inc("signoff_chat_api_errors_total", platform=message.platform)
        attempts = message.attempts + 1
        error = str(exc)
        if exc.permanent and attempts >= PERMANENT_ATTEMPTS:
            await self._store.write(lambda uow: uow.outbox.give_up(message.id, error=error))
            log.error("outbox.gave_up", message_id=message.id, platform=message.platform, error=error,
                      attempts=attempts)
            return
        backoff = min(MAX_BACKOFF_S, 0.5 * 2 ** min(attempts, 10))
        delay = exc.retry_after if exc.retry_after is not None else backoff
        at = self._clock.now() + timedelta(seconds=delay)
        await self._store.write(lambda uow: uow.outbox.retry_later(message.id, at=at, error=error))
        log.warning("outbox.retry", message_id=message.id, platform=message.platform, attempts=attempts,
                    retry_in_s=round(delay, 2), error=error)
