"""Outgoing chat messages, stored in the same transaction as the change that caused them.

They stand in core/chat, beside the Card they carry, so that the ports (core/ports.py) name them without
importing core/app.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from core.chat.cards import Card, Mentions


class MessageKind(StrEnum):
    card = "card"                # post a request's card to a channel; the card anchors the thread
    card_update = "card_update"  # re-render a request's card from its current state (coalesced)
    thread = "thread"            # a reply in the request's (or incident's) thread
    channel = "channel"          # a message in a channel, outside any thread
    direct = "direct"            # a direct message to one person (channel: their account), linking to the key's card


class NewMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    platform: str
    channel: str
    kind: MessageKind
    key: str | None = None
    text: str = ""
    card: Card | None = None
    mentions: Mentions = Field(default_factory=Mentions, description="who the message pages, on its platform")
    anchor_as: str | None = Field(
        default=None, description="remember the delivered message as the anchor of this key (e.g. PB-3)",
    )


class OutboxMessage(NewMessage):
    id: int
    attempts: int = 0
    created_at: datetime
    leased_before: bool = False  # a process took it before and did not finish: its outcome is unknown

    @property
    def uncertain(self) -> bool:
        """An earlier attempt may have reached the chat platform."""
        return self.attempts > 0 or self.leased_before

    @property
    def token(self) -> str:
        return f"outbox-{self.id}"


class MessageRef(BaseModel):
    """Where a delivered message lives. `thread` is where replies to it go."""

    model_config = ConfigDict(frozen=True)

    platform: str
    channel: str
    message_id: str
    thread: str | None = None


class DeliveryError(Exception):
    """A chat platform did not take a message. Transient unless `permanent`."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
