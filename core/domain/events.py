"""The timeline: an append-only, hash-chained record of everything that happened.

`hash = sha256(prev_hash + canonical_json(event))`, where the event is every field but
`hash` itself; with an audit key (`SIGNOFF_AUDIT_KEY`) it is `HMAC-SHA256(key, …)` of the same text, so
that rewriting the whole chain needs the key. The chain is global (one sequence across requests and incidents), so a
deleted, inserted, altered or reordered event breaks it at that point.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

GENESIS_HASH = "0" * 64


class EventType(StrEnum):
    requested = "requested"
    refused = "refused"
    signed = "signed"
    approved = "approved"
    rejected = "rejected"
    cancelled = "cancelled"
    expired = "expired"
    claimed = "claimed"
    dry_run = "dry_run"
    executed = "executed"
    verified = "verified"
    failed = "failed"
    blocked = "blocked"
    interrupted = "interrupted"
    risk_raised = "risk_raised"
    stale = "stale"
    waiting = "waiting"
    escalated = "escalated"
    reminded = "reminded"
    incident_opened = "incident_opened"
    incident_updated = "incident_updated"
    incident_linked = "incident_linked"
    incident_resolved = "incident_resolved"
    rated = "rated"
    playbook_extracted = "playbook_extracted"
    playbook_vote = "playbook_vote"
    playbook_approved = "playbook_approved"
    playbook_rejected = "playbook_rejected"
    playbook_suspended = "playbook_suspended"
    proposed = "proposed"
    silenced = "silenced"  # [alertmanager] silence: the target's alerts hushed while it runs
    unsilenced = "unsilenced"
    breakglass = "breakglass"
    countersigned = "countersigned"
    disputed = "disputed"
    review_overdue = "review_overdue"
    # `signoff audit rekey`: the audit key changed; the event seals the epoch it closes (core/domain/integrity.py).
    key_changed = "audit.key_changed"


class NewEvent(BaseModel):
    """An event before it joins the chain: the state machine and services produce these."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    type: EventType
    status: str
    title: str
    detail: str = ""
    actor: str = "signoff"
    actor_role: str = "system"
    request_id: str | None = None
    incident_id: str | None = None
    # On `requested` and `signed` events: the digest of what was asked for and signed (`approvals.signed_digest`).
    digest: str | None = None


class TimelineEvent(NewEvent):
    seq: int
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return event_body(self.seq, self, self.prev_hash)


def format_at(at: datetime) -> str:
    """One fixed textual form for instants, so the hash does not depend on a database's types."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    at = at.astimezone(UTC)
    if at.year < 1000:  # isoformat pads the year to four digits, strftime does not: the stored form stays
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ") at half the cost (every row written has instants).
    return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_at(text: str) -> datetime:
    if len(text) == _STORED_LENGTH and text[-1] == "Z" and text[7] == "-" and text[10] == "T" \
            and text[19] == ".":
        # What format_at wrote: fromisoformat reads it six times faster than strptime (every row read).
        try:
            return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


_STORED_LENGTH = len("2026-01-01T00:00:00.000000Z")


def event_body(seq: int, event: NewEvent, prev_hash: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": format_at(event.at),
        "type": str(event.type),
        "status": event.status,
        "title": event.title,
        "detail": event.detail,
        "actor": event.actor,
        "actor_role": event.actor_role,
        "request_id": event.request_id,
        "incident_id": event.incident_id,
        "prev_hash": prev_hash,
        # Only where present, so events written before digests existed keep their hashes.
        **({"digest": event.digest} if event.digest is not None else {}),
    }


def canonical_json(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, body: dict[str, Any], key: bytes | None = None) -> str:
    return text_hash(prev_hash, canonical_json(body), key)


def text_hash(prev_hash: str, body_json: str, key: bytes | None = None) -> str:
    """`chain_hash` of an event whose canonical JSON is already at hand."""
    text = (prev_hash + body_json).encode("utf-8")
    if key:
        return hmac.new(key, text, hashlib.sha256).hexdigest()
    return hashlib.sha256(text).hexdigest()


def authentic(event: TimelineEvent, key: bytes | None = None) -> bool:
    """The event's content still matches its hash (with the key, only the key's holder could have made it)."""
    return hmac.compare_digest(chain_hash(event.prev_hash, event.body(), key), event.hash)


def link(event: NewEvent, seq: int, prev_hash: str, key: bytes | None = None) -> TimelineEvent:
    body = event_body(seq, event, prev_hash)
    return TimelineEvent(
        **event.model_dump(), seq=seq, prev_hash=prev_hash, hash=chain_hash(prev_hash, body, key)
    )


class ChainReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    intact: bool
    checked: int
    bad_seq: int | None = None
    problem: str | None = None
    # Of an intact chain's last key epoch: its key id, its first event and its seal so far (`audit rekey`).
    epoch_key: str | None = None
    epoch_from: int = 1
    seal: str | None = None

    def describe(self) -> str:
        if self.intact:
            return f"timeline intact: {self.checked} events, hash chain verified"
        return f"timeline broken at event {self.bad_seq}: {self.problem} ({self.checked} events checked before it)"


def verify_chain(
    events: Iterable[TimelineEvent], head: tuple[int, str] | None = None, key: bytes | None = None,
) -> ChainReport:
    """Walk the chain in seq order. Names the first event that does not fit.

    `head` is the (seq, hash) the store recorded for its last append; it catches events
    deleted from the end, which a chain alone cannot see.
    """
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for event in events:
        if event.seq != expected_seq:
            missing = "missing or reordered" if event.seq > expected_seq else "duplicated or reordered"
            return ChainReport(
                intact=False, checked=checked, bad_seq=event.seq,
                problem=f"expected event {expected_seq} here ({missing} events)",
            )
        if event.prev_hash != expected_prev:
            return ChainReport(
                intact=False, checked=checked, bad_seq=event.seq,
                problem="its prev_hash does not match the event before it (deleted, inserted or reordered)",
            )
        if not authentic(event, key):
            return ChainReport(
                intact=False, checked=checked, bad_seq=event.seq,
                problem="its content does not match its hash (altered"
                        + (", or hashed without this audit key)" if key else ")"),
            )
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    if head is not None and (head[0] != checked or (checked and head[1] != expected_prev)):
        return ChainReport(
            intact=False, checked=checked, bad_seq=checked + 1,
            problem=f"the chain ends at event {checked} but the store recorded event {head[0]} as the last",
        )
    return ChainReport(intact=True, checked=checked)
