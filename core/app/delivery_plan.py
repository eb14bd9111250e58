"""What one pass of the outbox dispatcher claims: its lanes of messages, and what each message's delivery
needs, read before the claim's short write (`core.app.delivery`)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from core.chat.cards import Card
from core.chat.messages import MessageKind, MessageRef, OutboxMessage
from core.domain.ids import IncidentId, stored_key
from core.ports import UnitOfWork


@dataclass
class Job:
    """One message of a pass and what its delivery needs, read before it is leased."""

    message: OutboxMessage
    anchor: MessageRef | None  # where the key's card lives (None: not posted yet, or posted earlier in the lane)
    card: Card | None = None  # the card to post or to update to, rendered from the request's current state
    coalesced: tuple[int, ...] = ()  # the key's other pending card updates, done with this one
    leased_until: datetime | None = None


@dataclass
class Claim:
    """A pass: the survey's findings (a read), then what the claim leased (a short write)."""

    lanes: list[list[Job]] = field(default_factory=list)
    settled: list[int] = field(default_factory=list)  # messages done in the claim itself (nothing to send)
    held_back: list[OutboxMessage] = field(default_factory=list)  # new cards past the channel's budget
    postponed: list[tuple[int, datetime]] = field(default_factory=list)
    behind: set[str] = field(default_factory=set)  # cards whose due messages wait for the ones on their way
    full: bool = False  # the pass took as many as it may: more may be due
    anchors: dict[tuple[str, str], MessageRef] = field(default_factory=dict)  # read from the database


class Anchors:
    """Where each card lives, as far as this process has seen it committed. An anchor is written once and
    never changed or deleted, so a copy stays true: a pass reads from the database only the anchors it has
    not seen yet (a card updated every second under load was read on every pass, ~26 reads per request).
    Bounded: the least recently used are forgotten and read again when needed."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._known: OrderedDict[tuple[str, str], MessageRef] = OrderedDict()

    def read(self, uow: UnitOfWork, key: str, platform: str, claim: Claim) -> MessageRef | None:
        """`key`'s anchor; one read from `uow` when it is not known, noted in `claim` to be remembered once
        the pass's transaction has committed (what a write transaction reads may still roll back)."""
        ref = self._known.get((key, platform))
        if ref is not None:
            self._known.move_to_end((key, platform))
            return ref
        ref = uow.outbox.anchor(key, platform)
        if ref is not None:
            claim.anchors[(key, platform)] = ref
        return ref

    def remember(self, anchors: Mapping[tuple[str, str], MessageRef]) -> None:
        """Anchors committed to the database (read by a finished transaction, or booked)."""
        for where, ref in anchors.items():
            self._known[where] = ref
            self._known.move_to_end(where)
        while len(self._known) > self._size:
            self._known.popitem(last=False)

    def __len__(self) -> int:
        return len(self._known)


def lane_key(message: OutboxMessage) -> str:
    """Messages of one key (a request's card and its thread) go out in order, one after another."""
    return message.key or f"#{message.id}"


def new_card(message: OutboxMessage) -> bool:
    """A request's card, or an incident's first message in a channel: what the flood budget counts."""
    if message.kind is MessageKind.card:
        return True
    return message.kind is MessageKind.channel and isinstance(stored_key(message.key), IncidentId)
