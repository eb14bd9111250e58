"""Is the stored history still what happened, and the stored request still what was signed?

Checked before anything runs (`request_problem`) and by `signoff audit verify` (`walk_chain`).

The stored request (its operation, risk, quorum and signatures) lives in a row someone with database access
could edit; its timeline events are hash-chained (with `SIGNOFF_AUDIT_KEY`, keyed). A request is bound to its
events when its `requested` event and one `signed` event per signature carry the digest of the request as stored,
and its events are bound to the chain when each links to the event before it, all the way to the chain head.

Key epochs: turning the audit key on, rotating or removing it appends an `audit.key_changed` event
(`signoff audit rekey`). That event is hashed with the new key, names the new and the replaced key by their ids,
and carries the seal of the epoch it closes: a sha256 over every event of that epoch (content and hash). So the
current key vouches for the last key change, whose seal vouches for the epoch before it, and so on back to event 1,
without the old keys. Events of a keyless epoch are also checked one by one (anyone can recompute a sha256).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.domain.approvals import ApprovalRequest, RequestStatus, signed_digest
from core.domain.events import (
    GENESIS_HASH,
    ChainReport,
    EventType,
    NewEvent,
    TimelineEvent,
    authentic,
    canonical_json,
    text_hash,
)

NO_KEY = "none"
_KEY_CHANGE = re.compile(r"^key (\S+) replaces key (\S+);")
_REKEY_HINT = "after turning on or changing SIGNOFF_AUDIT_KEY, run `signoff audit rekey` (docs/security.md)"

# The events a request in each state must have (besides its `requested` event): its history from creation on.
_REQUIRED: dict[RequestStatus, tuple[EventType, ...]] = {
    RequestStatus.pending: (),
    RequestStatus.approved: (EventType.approved,),
    RequestStatus.executing: (EventType.approved, EventType.claimed),
    RequestStatus.verifying: (EventType.approved, EventType.claimed, EventType.executed),
    RequestStatus.succeeded: (EventType.approved, EventType.claimed, EventType.executed),
    RequestStatus.failed: (EventType.approved, EventType.claimed, EventType.failed),
    RequestStatus.blocked: (EventType.approved, EventType.claimed, EventType.blocked),
    RequestStatus.interrupted: (EventType.approved, EventType.claimed, EventType.interrupted),
    RequestStatus.rejected: (EventType.rejected,),
    RequestStatus.expired: (EventType.expired,),
    RequestStatus.cancelled: (EventType.cancelled,),
    RequestStatus.stale: (EventType.stale,),
}


class ChainReader(Protocol):
    """What the checks read from the timeline repository."""

    def for_request(self, request_id: str) -> list[TimelineEvent]: ...

    def scan(self, batch: int = 5000, after: int = 0) -> Iterator[TimelineEvent]: ...

    def head(self) -> tuple[int, str] | None: ...

    def key_changes(self, after: int = 0) -> list[TimelineEvent]: ...

    def links(self, after: int, upto: int) -> Iterator[tuple[int, str, str]]: ...

    def at(self, seqs: Collection[int]) -> list[TimelineEvent]: ...


def key_id(key: bytes | None) -> str:
    """A public name for a key (it reveals nothing of the key): `none` without one."""
    if not key:
        return NO_KEY
    return hmac.new(key, b"signoff audit key id", hashlib.sha256).hexdigest()[:16]


def key_change_ids(event: TimelineEvent) -> tuple[str, str]:
    """(new key id, replaced key id) of an `audit.key_changed` event; ("?", "?") when its text was mangled."""
    match = _KEY_CHANGE.match(event.detail)
    return (match.group(1), match.group(2)) if match else ("?", "?")


def key_change(*, at: datetime, new_key: bytes | None, old_key_id: str, sealed_from: int, sealed_to: int,
               seal: str) -> NewEvent:
    """The event `signoff audit rekey` appends: hashed with the new key, it seals the epoch it closes."""
    return NewEvent(
        at=at, type=EventType.key_changed, status="audit", title="audit key changed (signoff audit rekey)",
        detail=f"key {key_id(new_key)} replaces key {old_key_id}; seals events {sealed_from}–{sealed_to}",
        digest=seal,
    )


def epoch_before(changes: Sequence[TimelineEvent], key: bytes | None) -> str:
    """The key id of the events before the first of `changes` (the current key when nothing changed since)."""
    return key_change_ids(changes[0])[1] if changes else key_id(key)


@dataclass
class _Epoch:
    key_id: str
    first: int
    seal: hashlib._Hash  # over every event of the epoch so far: its content and its hash


def walk_chain(events: Iterable[TimelineEvent], *, head: tuple[int, str] | None, key: bytes | None,
               epoch_key_id: str, start: tuple[int, str] | None = None) -> ChainReport:
    """Walk the chain from event 1 in seq order up to the head: links, hashes per key epoch, seals, the head.

    `key` is the key of the last epoch (the configured one); `epoch_key_id` the key id of the first epoch.
    `start` (seq, prev_hash) walks a part of the chain that begins later (an export made `--after` some
    event): its first link is taken as given, and the seal closing its first epoch, which covers events
    before the part, is not checked."""
    expected_seq, expected_prev = start or (1, GENESIS_HASH)
    epoch = _Epoch(epoch_key_id, expected_seq, hashlib.sha256())
    partial_epoch = start is not None and start[0] > 1
    checked = 0
    current = key_id(key)

    def broken(seq: int, problem: str) -> ChainReport:
        return ChainReport(intact=False, checked=checked, bad_seq=seq, problem=problem)

    for event in events:
        if event.seq != expected_seq:
            missing = "missing or reordered" if event.seq > expected_seq else "duplicated or reordered"
            return broken(event.seq, f"expected event {expected_seq} here ({missing} events)")
        if event.prev_hash != expected_prev:
            return broken(event.seq, "its prev_hash does not match the event before it (deleted, inserted, "
                                     "reordered, or the event before it was altered and re-hashed)")
        if event.type is EventType.key_changed:
            new_id, old_id = key_change_ids(event)
            if old_id != epoch.key_id:
                return broken(event.seq, f"this key change says it replaces key {old_id}, but the events before "
                                         f"it were hashed with key {epoch.key_id}")
            if not partial_epoch and event.digest != epoch.seal.hexdigest():
                return broken(event.seq, f"events {epoch.first}–{event.seq - 1} do not match the seal recorded "
                                         "when the key changed here (altered, inserted or deleted)")
            epoch = _Epoch(new_id, event.seq, hashlib.sha256())
            partial_epoch = False
        body = canonical_json(event.body())
        held = epoch.key_id in (NO_KEY, current)
        if held and not hmac.compare_digest(
                text_hash(event.prev_hash, body, key if epoch.key_id != NO_KEY else None), event.hash):
            return broken(event.seq, "its content does not match its hash (altered" + (
                f", or hashed with another audit key: {_REKEY_HINT})" if epoch.key_id != NO_KEY else ")"))
        # Otherwise the epoch's key is an earlier one: the seal at the next key change vouches for its events.
        epoch.seal.update((body + event.hash + "\n").encode("utf-8"))
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    last = (expected_seq - 1, expected_prev)
    if checked and head is None:
        return broken(expected_seq, f"the record of the chain's head (table chain_head) is missing, so events cut "
                                    f"from the end cannot be ruled out; the chain ends at event {last[0]}")
    if head is not None and (head[0] != last[0] or (checked and head[1] != last[1])):
        return broken(expected_seq, f"the chain ends at event {last[0]} but the store recorded event {head[0]} "
                                    "as the last")
    if checked and epoch.key_id != current:
        return broken(epoch.first, f"events from {epoch.first} on are hashed with key {epoch.key_id}, but "
                                   f"SIGNOFF_AUDIT_KEY is {'not set' if key is None else 'key ' + current}; "
                                   f"{_REKEY_HINT}")
    return ChainReport(intact=True, checked=checked, epoch_key=epoch.key_id, epoch_from=epoch.first,
                       seal=epoch.seal.hexdigest())


def verify_timeline(timeline: ChainReader, key: bytes | None) -> ChainReport:
    """The whole chain, from event 1 to the head (`signoff audit verify`)."""
    changes = timeline.key_changes()
    return walk_chain(timeline.scan(), head=timeline.head(), key=key, epoch_key_id=epoch_before(changes, key))


def key_problem(timeline: ChainReader, key: bytes | None) -> str | None:
    """At start-up: the chain's last event must be hashed with the configured key, or the service would append
    events no key epoch vouches for (the key was turned on, changed or removed without `signoff audit rekey`)."""
    head = timeline.head()
    last = next(timeline.scan(batch=1, after=head[0] - 1), None) if head is not None else None
    if head is None or last is None or last.seq != head[0] or authentic(last, key):
        return None  # empty; or cut, which the executor and `signoff audit verify` name
    held = "not set" if key is None else f"key {key_id(key)}"
    return (f"The timeline's last event ({last.seq}) is not hashed with SIGNOFF_AUDIT_KEY ({held}): after turning "
            "on, changing or removing the key, stop signoff and run `signoff audit rekey` first (docs/security.md); "
            "if the key did not change, run `signoff audit verify`.")


def request_problem(request: ApprovalRequest, timeline: ChainReader, key: bytes | None = None) -> str | None:
    """Before executing: None when the request's events link to their predecessors up to the chain head and the
    request is what was requested and signed; else the first problem, in a sentence.

    Quick, so it can run inside the claim: the links (prev_hash → hash) of every event from the one before the
    request's first to the head, and the hashes of the request's events and of their neighbours."""
    events = timeline.for_request(request.id)
    if not events:
        return f"{request.id} has no timeline events"
    # Read first: what others append from now on lies beyond it (their rows and the head commit together).
    head = timeline.head()
    if head is None or head[0] < events[-1].seq:
        return (f"the chain head is {'missing' if head is None else f'at event {head[0]}'}, before {request.id}'s "
                f"last event {events[-1].seq}")
    start = max(events[0].seq - 1, 1)
    problem = _links_problem(timeline.links(after=start - 1, upto=head[0]), start, head)
    if problem is not None:
        return f"the timeline from {request.id}'s first event to the chain head is broken at {problem}"
    changes = [c for c in timeline.key_changes(after=start - 1) if c.seq <= head[0]]
    last_epoch = key_change_ids(changes[-1])[0] if changes else key_id(key)
    if last_epoch != key_id(key):
        return (f"events from {changes[-1].seq} on are hashed with key {last_epoch}, not SIGNOFF_AUDIT_KEY; "
                f"{_REKEY_HINT}")
    # The request's events and their neighbours, read in one query (the links above vouch that none is missing).
    near = {seq for event in events for seq in (event.seq - 1, event.seq, event.seq + 1) if 0 < seq <= head[0]}
    known = {event.seq: event for event in events}
    known.update((e.seq, e) for e in timeline.at(sorted(near - known.keys())))
    for seq in sorted(near):
        neighbour = known.get(seq)
        if neighbour is None:
            return f"timeline event {seq} (near {request.id}'s events) is missing"
        earlier = [c for c in changes if c.seq <= seq]
        epoch = key_change_ids(earlier[-1])[0] if earlier else epoch_before(changes, key)
        if epoch in (NO_KEY, key_id(key)) and not authentic(neighbour, key if epoch != NO_KEY else None):
            return f"timeline event {seq} (near {request.id}'s events) does not match its hash"
    return binding_problem(request, events)


def _links_problem(links: Iterable[tuple[int, str, str]], start: int, head: tuple[int, str]) -> str | None:
    expected_seq, previous = start, GENESIS_HASH if start == 1 else None
    for seq, prev_hash, hash_ in links:
        if seq != expected_seq:
            return f"event {min(seq, expected_seq)}: events missing, duplicated or reordered"
        if previous is not None and prev_hash != previous:
            return f"event {seq}: its prev_hash does not match the event before it (altered and re-hashed, " \
                   "deleted or inserted)"
        previous, expected_seq = hash_, expected_seq + 1
    if expected_seq - 1 != head[0] or previous != head[1]:  # (previous is a hash here: start <= head)
        return f"event {expected_seq}: the chain ends at event {expected_seq - 1} but the head records {head[0]}"
    return None


def binding_problem(request: ApprovalRequest, events: Sequence[TimelineEvent]) -> str | None:
    """None when the request matches what was requested and signed, and its history is complete for its state;
    else the first mismatch, in a sentence. The events' hashes are the chain walk's business."""
    digest = signed_digest(request)
    # What signoff itself stated the request to be: when requested, and after each raise of its risk floor.
    stated = [e.digest for e in events if e.type in (EventType.requested, EventType.risk_raised)]
    if not stated:
        return f"{request.id} has no `requested` event"
    if stated[-1] != digest:
        return (f"{request.id}'s stored operation, risk or quorum (`{request.operation.command()}`, "
                f"{request.risk}, {request.quorum}) is not what was requested")
    signed_by = {e.actor: e.digest for e in events if e.type is EventType.signed}
    for signature in request.signatures:
        if signature.person not in signed_by:
            return f"{request.id} lists a signature by {signature.person} that no `signed` event records"
        if signed_by[signature.person] not in stated:
            return f"{request.id}'s stored operation is not what {signature.person} signed"
    return history_problem(request, events)


def history_problem(request: ApprovalRequest, events: Sequence[TimelineEvent]) -> str | None:
    """A request's events must all be there, from creation to its state (events cut from the timeline)."""
    types = {e.type for e in events}
    missing = [str(t) for t in _REQUIRED.get(request.status, ()) if t not in types]
    if missing:
        return (f"{request.id} is {request.status} but its timeline has no {', '.join(f'`{m}`' for m in missing)} "
                "event (events were deleted)")
    return None
