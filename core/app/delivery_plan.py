"""What one pass of the outbox dispatcher claims: its lanes of messages, and what each message's delivery
needs, read before the claim's short write (`core.app.delivery`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.chat.cards import Card
from core.chat.messages import MessageRef, OutboxMessage


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


def lane_key(message: OutboxMessage) -> str:
    """Messages of one key (a request's card and its thread) go out in order, one after another."""
    return message.key or f"#{message.id}"
