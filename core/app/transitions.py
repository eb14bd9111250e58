"""The one way a request's change is stored.

Every transition of a request, its creation included, goes through `store_transition` inside the
caller's transaction: the new state, its timeline events, the card updates, the thread note and
the events other services handle (`core.app.messagebus`) commit together or not at all. The store
wakes the outbox once the transaction commits (see `core.ports.Store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.app.messagebus import Event, MessageBus, RequestCreated, RequestFinished
from core.app.notify import (
    MentionsFor,
    card_posts,
    card_updates,
    direct_pages,
    pages_requester,
    people_mentions,
    status_note,
    thread_replies,
    who_can_sign,
)
from core.domain.approvals import ApprovalRequest, RequestStatus, Transition
from core.domain.policy import Policy
from core.errors import ConcurrentUpdate
from core.ports import UnitOfWork

_RUNNING = frozenset({RequestStatus.executing, RequestStatus.verifying})
_OUTCOMES = frozenset({RequestStatus.succeeded, RequestStatus.failed, RequestStatus.blocked})


@dataclass(frozen=True)
class Claim:
    """Store an approved → executing change only by winning the execution claim (with its lease)."""

    worker: str
    lease_until: datetime


def store_transition(
    uow: UnitOfWork, before: ApprovalRequest | None, changed: Transition, *, policy: Policy | None = None,
    bus: MessageBus | None = None, note: str | None = None, mentions: MentionsFor | None = None,
    card: bool = True, claim: Claim | None = None, first_post: MentionsFor | None = None,
) -> ApprovalRequest:
    """Persist `changed` (from `before`; None: a new request) and everything it causes; returns the new state.

    - The state: added, or a compare-and-swap on `before.version` (raises ConcurrentUpdate when another
      writer won, so the store runs the whole transaction again); `claim`: the execution claim's swap.
    - The card: a new request's first post (paging who can sign, and critical requests' approvers directly,
      when the policy is given; `first_post` says whom it pages instead); else an update, unless `card` is False.
    - The thread: `note`, else what the new state deserves (`status_note`). With the policy, a veto or an
      expiry pages the requester unless `mentions` says whom to page.
    - The events: `RequestCreated`, or `RequestFinished` when a running operation ended, to `bus`.
    """
    after = changed.request
    if before is None:
        uow.requests.add(after)
    elif claim is not None:
        if not uow.requests.claim(after, expected_version=before.version, worker=claim.worker,
                                  lease_until=claim.lease_until):
            raise ConcurrentUpdate(f"{after.id} was claimed by another worker.")
    else:
        uow.requests.update(after, expected_version=before.version)
    if changed.events:
        uow.timeline.append(changed.events)
    if before is None:
        if policy is not None:
            uow.outbox.add(card_posts(after, first_post or (lambda platform: who_can_sign(policy, after, platform))))
            uow.outbox.add(direct_pages(policy, after))
        else:
            uow.outbox.add(card_posts(after))
    elif card:
        uow.outbox.add(card_updates(after))
    text = note if note is not None else status_note(after)
    if text:
        if mentions is None and policy is not None and pages_requester(after):
            mentions = lambda platform: people_mentions(policy, [after.requested_by], platform)  # noqa: E731
        uow.outbox.add(thread_replies(after, text, mentions=mentions))
    if bus is not None:
        for event in what_happened(before, after):
            bus.publish(uow, event)
    return after


def what_happened(before: ApprovalRequest | None, after: ApprovalRequest) -> list[Event]:
    """The events other services hear about a change."""
    if before is None:
        return [RequestCreated(after)]
    if before.status in _RUNNING and after.status in _OUTCOMES:
        return [RequestFinished(after)]
    return []
