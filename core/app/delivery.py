"""The outbox dispatcher: delivers stored chat messages, in order, at least once, retrying forever.

Messages for one card (same platform and key) go out in the order they were stored, so a
card exists before its updates and replies; only a card update held back by the pace limit
lets later replies pass it. Card updates re-render the request's current
state, so several queued updates collapse into one call, at most one per card per
`min_update_interval`.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

import structlog

from core.app.metrics import Metrics
from core.app.signals import Signals
from core.chat.cards import Card, request_card
from core.chat.digest import digest_text, incident_line, request_line
from core.chat.messages import DeliveryError, MessageKind, MessageRef, NewMessage, OutboxMessage
from core.domain.approvals import ApprovalRequest
from core.domain.ids import IncidentId, RequestId, stored_key
from core.ports import ChatGateway, Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 300.0
PERMANENT_ATTEMPTS = 5
# At most this many of one card's messages per pass, so that cards waiting for their post leave room for others.
PER_LANE = 20
# Flood control: one digest per channel per minute; how often a process looks for one that is due.
DIGEST_EVERY = timedelta(minutes=1)
DIGEST_CHECK = timedelta(seconds=30)


class _CardNotYet(Exception):
    """A card update or reply whose card has not been posted yet."""


class OutboxDispatcher:
    def __init__(
        self, *, store: Store, clock: Clock, signals: Signals, gateways: Mapping[str, ChatGateway],
        owner: str | None = None, min_update_interval: float = 1.0, lease: timedelta = timedelta(seconds=60),
        metrics: Metrics | None = None, concurrency: int = 8, max_new_cards_per_minute: int = 10,
    ) -> None:
        self._store = store
        self._concurrency = concurrency
        self._metrics = metrics or Metrics()
        self._clock = clock
        self._signals = signals
        self.gateways = dict(gateways)
        self._owner = owner or uuid.uuid4().hex[:12]
        self._min_update_interval = min_update_interval
        self._lease = lease
        self._last_update: dict[tuple[str, str], datetime] = {}
        self.delivered = 0
        self.failures = 0
        self._card_budget = max_new_cards_per_minute
        self._next_digest_check = clock.now()
        self.held_back = 0

    async def run_once(self, limit: int = 200) -> int:
        """One pass over the due messages; returns how many were delivered.

        Each card's messages go out one after another; different cards go out side by side (a chat
        API call is mostly waiting), at most `concurrency` at a time.
        """
        now = self._clock.now()
        platforms = tuple(self.gateways)
        if now >= self._next_digest_check and await self._digests(now):
            now = self._clock.now()  # the digest just stored is due in this pass
        due = await self._store.read(
            lambda uow: uow.outbox.due(now, limit, platforms=platforms, per_lane=PER_LANE))
        lanes: dict[tuple[str, str], list[OutboxMessage]] = {}
        for message in due:
            lanes.setdefault((message.platform, message.key or f"#{message.id}"), []).append(message)
        gate = asyncio.Semaphore(self._concurrency)
        counts = [0]

        async def lane(messages: list[OutboxMessage]) -> None:
            async with gate:
                try:
                    for message in messages:
                        outcome = await self._one(message, now)
                        if outcome == "blocked":
                            return  # later messages of this card wait for this one
                        if outcome == "delivered":
                            counts[0] += 1
                except Exception:
                    # One lane fails alone (a database error while booking it): cancelling the others mid-call
                    # would re-send what they had delivered but not yet booked.
                    log.exception("outbox.lane_crashed", platform=messages[0].platform, key=messages[0].key)

        async with asyncio.TaskGroup() as group:
            for messages in lanes.values():
                group.create_task(lane(messages))
        self.delivered += counts[0]
        self._forget_paced(now)
        return counts[0]

    @property
    def pacing_entries(self) -> int:
        return len(self._last_update)

    def _forget_paced(self, now: datetime) -> None:
        """A card whose last update is older than the pace no longer holds anything back: forget it, so the
        map holds only the cards updated in the last moment."""
        horizon = now - timedelta(seconds=self._min_update_interval)
        for key in [k for k, at in self._last_update.items() if at <= horizon]:
            del self._last_update[key]

    async def _one(self, message: OutboxMessage, now: datetime) -> str:
        gateway = self.gateways.get(message.platform)
        if gateway is None:
            return "blocked"  # another process (or a later start) with that platform delivers it
        postpone = self._update_too_soon(message, now)
        if postpone is not None:
            # A card update waiting for the platform's pace must not hold back the thread's replies:
            # the card exists already, and the update renders the latest state when it goes.
            await self._postpone(message.id, postpone)
            return "postponed"
        if not await self._lease_message(message, now):
            return "blocked"
        try:
            await self._deliver(gateway, message)
        except _CardNotYet:
            await self._postpone(message.id, now + timedelta(seconds=1))
            return "blocked"
        except DeliveryError as exc:
            await self._failed(message, exc)
            return "blocked"
        except Exception as exc:  # an adapter bug must not stop every other message
            log.exception("outbox.delivery_crashed", message_id=message.id, platform=message.platform)
            await self._failed(message, DeliveryError(f"{type(exc).__name__}: {exc}"))
            return "blocked"
        return "delivered"

    def _update_too_soon(self, message: OutboxMessage, now: datetime) -> datetime | None:
        if message.kind is not MessageKind.card_update or message.key is None:
            return None
        last = self._last_update.get((message.platform, message.key))
        if last is None:
            return None
        ready = last + timedelta(seconds=self._min_update_interval)
        return ready if now < ready else None

    async def _postpone(self, message_id: int, until: datetime) -> None:
        await self._store.write(
            lambda uow: uow.outbox.retry_later(message_id, at=until, error="", count_attempt=False))

    async def _lease_message(self, message: OutboxMessage, now: datetime) -> bool:
        return await self._store.write(
            lambda uow: uow.outbox.lease(message.id, owner=self._owner, until=now + self._lease, now=now))

    async def _deliver(self, gateway: ChatGateway, message: OutboxMessage) -> None:
        kind = message.kind
        key = message.key
        anchor = await self._store.read(lambda uow: uow.outbox.anchor(key, message.platform)) if key else None
        if kind is not MessageKind.card and anchor is None and key is not None and await self._store.read(
                lambda uow: uow.outbox.card_pending(message.platform, key)):
            # The card is not out yet (its post is being retried, or is leased by a process that
            # died): updates and replies wait for it instead of going out without their thread.
            raise _CardNotYet()
        if anchor is None and key is not None and self._new_card(message) and not await self._within_budget(message):
            await self._done([message.id])  # listed in the channel's next digest instead
            return
        if kind is MessageKind.card:
            if anchor is None:
                card = message.card or await self._render(message.key)
                if card is None:
                    await self._done([message.id])
                    return
                if message.mentions:
                    card = card.model_copy(update={"mentions": message.mentions})
                ref = await gateway.post_card(message.channel, card, token=message.token, retry=message.uncertain)
                await self._done([message.id], anchors={message.key or "": ref})
            else:
                await self._done([message.id])  # already posted by an earlier attempt
            return
        if kind is MessageKind.card_update:
            if anchor is None or message.key is None:
                await self._done([message.id])  # the card was never posted; nothing to update
                return
            ids = await self._store.read(lambda uow: uow.outbox.pending_updates(message.platform, key or ""))
            card = await self._render(message.key)
            if card is not None:
                await gateway.update_card(anchor, card)
            self._last_update[(message.platform, message.key)] = self._clock.now()
            await self._done(sorted({*ids, message.id}))
            return
        if kind is MessageKind.direct:
            if anchor is not None:  # a card that was never posted has nothing to link to
                await gateway.post_direct(message.channel, message.text, anchor)
            await self._done([message.id])
            return
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
        await self._done([message.id], anchors=anchors)

    @staticmethod
    def _new_card(message: OutboxMessage) -> bool:
        """A request's card, or an incident's first message in a channel: what the flood budget counts."""
        if message.kind is MessageKind.card:
            return True
        return message.kind is MessageKind.channel and isinstance(stored_key(message.key), IncidentId)

    async def _within_budget(self, message: OutboxMessage) -> bool:
        key, now, limit = message.key or "", self._clock.now(), self._card_budget
        allowed = await self._store.write(lambda uow: uow.channel_cards.take(
            message.platform, message.channel, key, message_id=message.id, now=now, limit=limit))
        if not allowed:
            self.held_back += 1
            self._next_digest_check = now  # the next pass looks whether a digest is due
            self._metrics.inc("signoff_cards_held_back_total", platform=message.platform)
            log.info("outbox.card_held_back", platform=message.platform, channel=message.channel, key=key)
        return allowed

    async def _digests(self, now: datetime) -> int:
        """One digest message per channel per minute for the cards the budget held back (any replica's)."""
        self._next_digest_check = now + DIGEST_CHECK
        waiting = await self._store.read(lambda uow: uow.channel_cards.waiting())
        sent = 0
        for platform, channel in waiting:
            if platform not in self.gateways:
                continue
            count = await self._store.write(functools.partial(self._digest, platform=platform, channel=channel,
                                                              now=now))
            if count:
                log.info("outbox.digest", platform=platform, channel=channel, items=count)
                sent += 1
            else:
                # Not due yet: look again when it may be.
                self._next_digest_check = min(self._next_digest_check, now + timedelta(seconds=5))
        return sent

    def _digest(self, uow: UnitOfWork, *, platform: str, channel: str, now: datetime) -> int:
        keys = uow.channel_cards.take_digest(platform, channel, now=now, every=DIGEST_EVERY)
        if not keys:
            return 0
        lines: list[str] = []
        for key in keys:
            typed = stored_key(key)
            if isinstance(typed, RequestId):
                request = uow.requests.get(typed)
                lines.append(request_line(request) if request is not None else f"• {key}")
            elif isinstance(typed, IncidentId):
                incident = uow.incidents.get(typed)
                lines.append(incident_line(incident) if incident is not None else f"• {key}")
            else:
                lines.append(f"• {key}")
        uow.outbox.add([NewMessage(platform=platform, channel=channel, kind=MessageKind.channel,
                                   text=digest_text(lines, limit=self._card_budget))])
        uow.channel_cards.prune(now - timedelta(hours=1))
        return len(keys)

    async def _render(self, key: str | None) -> Card | None:
        request_id = stored_key(key)
        if not isinstance(request_id, RequestId):
            return None  # only a request has a card to re-render

        def read(uow: UnitOfWork) -> tuple[ApprovalRequest | None, str | None]:
            request = uow.requests.get(request_id)
            incident = uow.incidents.get(request.incident_id) if request and request.incident_id else None
            # A correlated incident's card says how far the problem reaches; a single alert needs no count.
            scope = incident.scope if incident is not None and incident.alert_count > 1 else None
            return request, scope

        request, scope = await self._store.read(read)
        return request_card(request, self._clock.now(), scope) if request is not None else None

    async def _done(self, ids: list[int], anchors: Mapping[str, MessageRef] | None = None) -> None:
        now = self._clock.now()

        def done(uow: UnitOfWork) -> None:
            for key, ref in (anchors or {}).items():
                uow.outbox.save_anchor(key, ref)
            uow.outbox.delivered(ids, now)

        await self._store.write(done)

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
