"""The ports: what the core needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self

from core.approvals import ApprovalRequest, RequestStatus, Signature
from core.cards import Card
from core.events import NewEvent, TimelineEvent
from core.incidents import Incident
from core.outbox import MessageRef, NewMessage, OutboxMessage
from core.playbooks import Playbook


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RequestRepository(Protocol):
    async def next_id(self) -> str: ...

    async def add(self, request: ApprovalRequest) -> None: ...

    async def get(self, request_id: str, *, lock: bool = False) -> ApprovalRequest | None: ...

    async def update(self, request: ApprovalRequest, *, expected_version: int) -> None:
        """Compare-and-swap on version; raises ConcurrentUpdate when someone else won."""
        ...

    async def add_signature(self, request_id: str, signature: Signature) -> None:
        """Raises AlreadySigned when the database already holds this person's signature."""
        ...

    async def claim(self, request: ApprovalRequest, *, expected_version: int, worker: str,
                    lease_until: datetime) -> bool:
        """One conditional UPDATE approved → executing; True for exactly one caller."""
        ...

    async def with_status(self, statuses: Sequence[RequestStatus], limit: int = 50) -> list[ApprovalRequest]: ...

    async def overdue_ids(self, now: datetime) -> list[str]:
        """Pending past expiry, approved but stale, executing with a lapsed lease."""
        ...

    async def counts(self) -> dict[str, int]: ...


class TimelineRepository(Protocol):
    async def append(self, events: Sequence[NewEvent]) -> list[TimelineEvent]: ...

    async def for_request(self, request_id: str) -> list[TimelineEvent]: ...

    async def for_incident(self, incident_id: str) -> list[TimelineEvent]: ...

    def scan(self, batch: int = 5000) -> AsyncIterator[TimelineEvent]: ...

    async def head(self) -> tuple[int, str] | None: ...


class OutboxRepository(Protocol):
    async def add(self, messages: Sequence[NewMessage]) -> None: ...

    async def due(self, now: datetime, limit: int = 50) -> list[OutboxMessage]: ...

    async def lease(self, message_id: int, *, owner: str, until: datetime, now: datetime) -> bool: ...

    async def delivered(self, message_ids: Sequence[int], at: datetime) -> None: ...

    async def retry_later(self, message_id: int, *, at: datetime, error: str, count_attempt: bool = True) -> None: ...

    async def give_up(self, message_id: int, *, error: str) -> None: ...

    async def pending_updates(self, platform: str, key: str) -> list[int]: ...

    async def backlog(self) -> int: ...

    async def failures(self) -> int: ...

    async def anchor(self, key: str, platform: str) -> MessageRef | None: ...

    async def save_anchor(self, key: str, ref: MessageRef) -> None: ...

    async def key_for_message(self, platform: str, message_or_thread_id: str) -> str | None: ...


class IncidentRepository(Protocol):
    async def next_id(self) -> str: ...

    async def add(self, incident: Incident) -> None: ...

    async def get(self, incident_id: str, *, lock: bool = False) -> Incident | None: ...

    async def by_fingerprint(self, fingerprint: str) -> Incident | None: ...

    async def update(self, incident: Incident) -> None: ...

    async def list_open(self, limit: int = 50) -> list[Incident]: ...


class PlaybookRepository(Protocol):
    async def next_id(self) -> str: ...

    async def add(self, playbook: Playbook) -> None: ...

    async def get(self, playbook_id: str, *, lock: bool = False) -> Playbook | None: ...

    async def update(self, playbook: Playbook) -> None: ...

    async def all(self) -> list[Playbook]: ...


class UnitOfWork(Protocol):
    requests: RequestRepository
    timeline: TimelineRepository
    outbox: OutboxRepository
    incidents: IncidentRepository
    playbooks: PlaybookRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool = True) -> UnitOfWork: ...


class ChatGateway(Protocol):
    """One chat platform, as the outbox dispatcher sees it."""

    platform: str

    async def post_card(self, channel: str, card: Card) -> MessageRef: ...

    async def update_card(self, ref: MessageRef, card: Card) -> None: ...

    async def post_reply(self, ref: MessageRef, text: str, card: Card | None = None) -> MessageRef: ...

    async def post_message(self, channel: str, text: str, card: Card | None = None) -> MessageRef: ...


class Advisor(Protocol):
    """The optional LLM track: proposes an action text for an incident, or None."""

    async def propose(self, incident: Incident, grammar: str) -> str | None: ...
