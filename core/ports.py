"""The ports: what the core needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from core.chat.cards import Card, Mentions
from core.chat.messages import MessageRef, NewMessage, OutboxMessage
from core.domain.advice import AdvisorAnswer
from core.domain.approvals import ApprovalRequest, RequestStatus, Signature
from core.domain.cluster import ClusterResult, Progress, TargetFacts
from core.domain.events import NewEvent, TimelineEvent
from core.domain.incidents import Incident
from core.domain.listing import IncidentQuery, Page, PlaybookQuery, RequestQuery
from core.domain.operations import Operation
from core.domain.playbooks import Playbook, Vote
from core.domain.silences import Matcher


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RequestRepository(Protocol):
    def next_id(self) -> str: ...

    def add(self, request: ApprovalRequest) -> None: ...

    def get(self, request_id: str, *, lock: bool = False) -> ApprovalRequest | None: ...

    def update(self, request: ApprovalRequest, *, expected_version: int) -> None:
        """Compare-and-swap on version; raises ConcurrentUpdate when someone else won."""
        ...

    def add_signature(self, request_id: str, signature: Signature) -> None:
        """Raises AlreadySigned when the database already holds this person's signature."""
        ...

    def claim(self, request: ApprovalRequest, *, expected_version: int, worker: str, lease_until: datetime) -> bool:
        """One conditional UPDATE approved → executing; True for exactly one caller."""
        ...

    def with_status(self, statuses: Sequence[RequestStatus], limit: int = 50) -> list[ApprovalRequest]: ...

    def ahead_of(self, request: ApprovalRequest) -> str | None:
        """The request `request` waits for on its target: executing, verifying, or approved before it."""
        ...

    def open_reviews(self, by: str | None = None) -> list[ApprovalRequest]:
        """Break glass reviews still owed (all, or by that person), oldest first."""
        ...

    def overdue_ids(self, now: datetime) -> list[str]:
        """Pending past expiry, approved but stale, executing with a lapsed lease."""
        ...

    def counts(self) -> dict[str, int]: ...

    def signers(self, request_id: str) -> list[str]:
        """The people the signatures table holds for the request (one row per person)."""
        ...

    def renew_lease(self, request_id: str, *, worker: str, until: datetime, now: datetime) -> bool:
        """Extend an executing request's lease, only while `worker` still holds it and it has not lapsed."""
        ...

    def lease_lapsed(self, request_id: str, now: datetime) -> bool: ...

    def scan(self, batch: int = 500) -> Iterator[ApprovalRequest]:
        """Every request, oldest first, read in batches."""
        ...


class TimelineRepository(Protocol):
    def append(self, events: Sequence[NewEvent]) -> list[TimelineEvent]: ...

    def for_request(self, request_id: str) -> list[TimelineEvent]: ...

    def for_incident(self, incident_id: str) -> list[TimelineEvent]: ...

    def scan(self, batch: int = 5000, after: int = 0) -> Iterator[TimelineEvent]: ...

    def head(self) -> tuple[int, str] | None: ...

    def key_changes(self, after: int = 0) -> list[TimelineEvent]: ...

    def links(self, after: int, upto: int) -> Iterator[tuple[int, str, str]]: ...

    def at(self, seqs: Collection[int]) -> list[TimelineEvent]: ...


class OutboxRepository(Protocol):
    def add(self, messages: Sequence[NewMessage]) -> None: ...

    def due(self, now: datetime, limit: int = 50, *, platforms: Collection[str] | None = None,
            per_lane: int | None = None, paced: Collection[str] = ()) -> list[OutboxMessage]:
        """The oldest due messages, only for `platforms` when given, at most `per_lane` per (platform, key),
        without the card updates of the keys in `paced` (they wait for the update pace)."""
        ...

    def prune(self, before: datetime) -> int:
        """Delete delivered and given-up messages older than `before`; returns how many."""
        ...

    def lease(self, message_id: int, *, owner: str, until: datetime, now: datetime) -> bool: ...

    def release(self, message_ids: Sequence[int], *, owner: str) -> None:
        """Give back `owner`'s leases on messages it did not try to send."""
        ...

    def delivered(self, message_ids: Sequence[int], at: datetime) -> None: ...

    def retry_later(self, message_id: int, *, at: datetime, error: str, count_attempt: bool = True) -> None: ...

    def give_up(self, message_id: int, *, error: str) -> None: ...

    def pending_updates(self, platform: str, key: str) -> list[int]: ...

    def card_pending(self, platform: str, key: str) -> bool:
        """Whether the card of `key` on `platform` is still waiting to be posted."""
        ...

    def backlog(self) -> int: ...

    def failures(self) -> int: ...

    def anchor(self, key: str, platform: str) -> MessageRef | None: ...

    def save_anchor(self, key: str, ref: MessageRef) -> None: ...

    def key_for_message(self, platform: str, message_or_thread_id: str) -> str | None: ...


class IncidentRepository(Protocol):
    def next_id(self) -> str: ...

    def add(self, incident: Incident) -> None: ...

    def get(self, incident_id: str, *, lock: bool = False) -> Incident | None: ...

    def by_fingerprint(self, fingerprint: str) -> Incident | None: ...

    def by_open_key(self, key: str, *, lock: bool = False) -> Incident | None:
        """The open incident with this correlation key (unique among open incidents)."""
        ...

    def alert_incident(self, alert_key: str) -> tuple[str, bool] | None:
        """The incident an alert (fingerprint@startsAt) joined, and whether it still fires."""
        ...

    def add_alerts(self, incident_id: str, alerts: Sequence[tuple[str, str | None]]) -> int: ...

    def alerts_resolved(self, alert_keys: Sequence[str]) -> dict[str, int]: ...

    def update(self, incident: Incident) -> None: ...

    def list_open(self, limit: int = 50) -> list[Incident]: ...


class PlaybookRepository(Protocol):
    def next_id(self) -> str: ...

    def add(self, playbook: Playbook) -> None: ...

    def get(self, playbook_id: str, *, lock: bool = False) -> Playbook | None: ...

    def find_identical(self, playbook: Playbook) -> Playbook | None: ...

    def update(self, playbook: Playbook) -> None: ...

    def add_vote(self, playbook_id: str, vote: Vote) -> bool: ...

    def all(self) -> list[Playbook]: ...


class LeaseRepository(Protocol):
    def acquire(self, name: str, *, owner: str, until: datetime, now: datetime) -> bool:
        """Take or renew the named lease; False while another owner holds it."""
        ...

    def release(self, name: str, *, owner: str) -> None: ...

    def holder(self, name: str, now: datetime) -> str | None: ...


class RateEventRepository(Protocol):
    def count_since(self, person: str, kind: str, since: datetime) -> int: ...

    def oldest_since(self, person: str, kind: str, since: datetime) -> str | None: ...

    def record(self, person: str, kind: str, at: datetime) -> None: ...

    def prune(self, before: datetime) -> int: ...


class ChannelCardRepository(Protocol):
    """The per-channel budget of new cards, shared by replicas, and the cards held back for a digest."""

    def take(self, platform: str, channel: str, key: str, *, message_id: int, now: datetime, limit: int) -> bool:
        """True: post it; False: a new card beyond the channel's budget, listed in the next digest instead."""
        ...

    def waiting(self) -> list[tuple[str, str]]: ...

    def take_digest(self, platform: str, channel: str, *, now: datetime, every: timedelta) -> list[str]: ...

    def prune(self, before: datetime) -> int: ...


class HistoryRepository(Protocol):
    """Read-only pages of history, newest first, by keyset (the list endpoints and the web view)."""

    def requests(self, query: RequestQuery) -> Page[ApprovalRequest]: ...

    def incidents(self, query: IncidentQuery) -> Page[Incident]: ...

    def playbooks(self, query: PlaybookQuery) -> Page[Playbook]: ...

    def chain(self, *, after: int, limit: int) -> list[dict[str, Any]]:
        """Timeline events with seq > `after`, in chain order, each as the body its hash covers
        (`events.event_body`, instants in their stored text) plus `hash`."""
        ...


@dataclass(frozen=True)
class StreamPosition:
    seq: int = 0  # the last event the sink acknowledged
    failures: int = 0  # in a row, since the last success
    not_before: datetime | None = None  # no attempt before this, after a failure
    last_error: str | None = None


class StreamRepository(Protocol):
    """Where a stream of the timeline to an outside sink has got to (shared by replicas)."""

    def position(self, name: str) -> StreamPosition: ...

    def advance(self, name: str, seq: int) -> None:
        """Acknowledged up to `seq`: never moves backwards; clears the failures."""
        ...

    def failed(self, name: str, *, error: str, failures: int, not_before: datetime) -> None: ...


class AuditSink(Protocol):
    """Where the SIEM stream goes (a webhook). `send` returns once the event is acknowledged, else raises."""

    async def send(self, event: dict[str, Any]) -> None: ...


class UnitOfWork(Protocol):
    """The repositories inside one transaction. Synchronous: a transaction is one function."""

    requests: RequestRepository
    timeline: TimelineRepository
    outbox: OutboxRepository
    incidents: IncidentRepository
    playbooks: PlaybookRepository
    leases: LeaseRepository
    rate_events: RateEventRepository
    channel_cards: ChannelCardRepository
    history: HistoryRepository
    stream: StreamRepository


T = TypeVar("T")


class Store(Protocol):
    """Runs a unit of work as one transaction: committed when `work` returns, rolled back when it raises.

    A transaction is a plain function so the adapter can run it in one hop (a database thread
    for SQLite, `run_sync` for PostgreSQL) and retry it whole on a write conflict; it must
    therefore do nothing but database work.

    Once a write that queued outbox messages has committed, the store wakes the outbox's delivery (a
    nudge: delivery also polls), so no caller has to remember to.
    """

    async def write(self, work: Callable[[UnitOfWork], T], *, urgent: bool = False, quick: bool = False) -> T:
        """`urgent`: a person is waiting on it (a click): it goes before background work.
        `quick`: a few statements on a few rows (the request's own path, not a listing or a sweep): the store
        may run it without leaving the event loop (SQLite), since it costs less than the hop to a thread."""
        ...

    async def read(self, work: Callable[[UnitOfWork], T], *, quick: bool = False) -> T: ...


class Cluster(Protocol):
    """The Kubernetes API server, as the core sees it. Its facts, results and errors are domain types
    (core/domain/cluster.py)."""

    async def check(self) -> str:
        """Reach the API server; return its version string or raise ClusterUnavailable."""
        ...

    async def inspect(self, op: Operation, *, fresh: bool = False) -> TargetFacts:
        """Read the target and what depends on it. Never writes. `fresh`: no cached facts."""
        ...

    async def apply(self, op: Operation, *, dry_run: bool, stamp: Mapping[str, str] | None = None) -> ClusterResult:
        """Perform the operation (server-side dry run when dry_run). Raises ClusterError. `stamp`: annotations
        for every object it changes (core/domain/stamp.py)."""
        ...

    async def observe(self, op: Operation, since: ClusterResult, *, reasons: bool = False) -> Progress:
        """Look at the effect of `op`, applied with result `since`. Never writes. `reasons`: also name
        the pods that are not Ready and why (one more read; used when verification fails)."""
        ...


class ChatGateway(Protocol):
    """One chat platform, as the outbox dispatcher sees it."""

    platform: str

    # Every post carries `token`, unique to the outbox message. `retry` says an earlier attempt's outcome is
    # unknown (it failed, or its process died mid-call): a gateway that can look its messages up finds the
    # one the earlier attempt may have stored instead of posting a second.

    async def post_card(self, channel: str, card: Card, *, token: str | None = None,
                        retry: bool = False) -> MessageRef: ...

    async def update_card(self, ref: MessageRef, card: Card) -> None: ...

    async def post_reply(
        self, ref: MessageRef, text: str, card: Card | None = None, *, mentions: Mentions | None = None,
        token: str | None = None, retry: bool = False,
    ) -> MessageRef: ...

    async def post_message(
        self, channel: str, text: str, card: Card | None = None, *, mentions: Mentions | None = None,
        token: str | None = None, retry: bool = False,
    ) -> MessageRef: ...

    async def post_direct(self, user: str, text: str, card: MessageRef) -> MessageRef:
        """A direct message to one person's account, ending with a link to the card at `card`."""
        ...


class GatewayRegistry(Protocol):
    """Where a chat adapter plugs its outbox gateway in once it can deliver, and takes it out again.

    Adapters register through this port instead of editing the dispatcher: the composition root
    decides what sits behind it.
    """

    def register(self, gateway: ChatGateway, default_channel: str | None = None) -> None:
        """Deliver `gateway.platform`'s messages through `gateway`; `default_channel` is where requests
        that come from elsewhere (the API, alerts) post their card on that platform."""
        ...

    def unregister(self, gateway: ChatGateway) -> None:
        """Stop delivering through `gateway` (a no-op when another one has replaced it); the outbox keeps
        that platform's messages for later."""
        ...

    def place(self, platform: str, default_channel: str) -> None:
        """Where requests that come from elsewhere post their card on `platform`, without a gateway in this
        process: a replica that does not hold the Discord session still queues Discord cards, which the
        replica that holds it delivers."""
        ...


class Advisor(Protocol):
    """The optional LLM track: proposes an action for an incident, or None. Never raises."""

    async def propose(self, incident: Incident, grammar: str) -> AdvisorAnswer | None: ...


class SilenceFailed(Exception):
    """Alertmanager could not be reached or refused: `reason` says which, for the thread and the metrics."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Silencer(Protocol):
    """Alertmanager's silences (API v2). Both calls raise `SilenceFailed`, never anything else."""

    async def create(self, matchers: Sequence[Matcher], *, starts_at: datetime, ends_at: datetime,
                     comment: str) -> str:
        """A silence made by `signoff`; its id."""
        ...

    async def expire(self, silence_id: str) -> None:
        """End the silence now (an already expired or unknown one is not an error)."""
        ...
