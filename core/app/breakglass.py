"""Break glass, as a service: the one-signature approval, the review message in the thread, countersignatures,
disputes, the open reviews, and the overdue reminder the maintenance loop sends once.

Each change is one `store_transition` on the request (its version guards it: one countersignature per person,
across replicas); an approval wakes the execution worker, which runs it as any approved request."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import structlog

from core.app.handlers import Caller, Handlers
from core.app.notify import group_mentions, people_mentions
from core.app.service import ApprovalService
from core.app.signals import Signals
from core.app.transitions import store_transition
from core.chat import breakglass_commands as cmd
from core.chat.breakglass_texts import (
    broken_text,
    countersigned_text,
    dispute_form_text,
    disputed_note,
    overdue_note,
    review_card,
    reviews_text,
)
from core.chat.cards import Mentions
from core.chat.commands import Reply
from core.chat.messages import MessageKind, NewMessage
from core.domain import breakglass
from core.domain.approvals import ApprovalRequest, Transition
from core.domain.ids import RequestId, as_request_id
from core.domain.oncall import schedule_name
from core.domain.policy import Person, Policy
from core.errors import NotFound, Refusal
from core.ports import Clock, Store, UnitOfWork

log = structlog.get_logger(__name__)


def review_messages(request: ApprovalRequest, policy: Policy, now: datetime) -> list[NewMessage]:
    """The review message, with Countersign and Dispute, in the thread; it mentions everyone who could have
    signed."""
    card = review_card(request, now)
    return [NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.thread, key=request.id, card=card,
                       text=card.title, mentions=people_mentions(policy, card_could_sign(request), p.platform))
            for p in request.places]


def card_could_sign(request: ApprovalRequest) -> tuple[str, ...]:
    return request.breakglass.could_sign if request.breakglass is not None else ()


class BreakglassService:
    def __init__(self, *, store: Store, policy: Policy, clock: Clock, signals: Signals,
                 approvals: ApprovalService | None = None) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock
        self._signals = signals
        self._approvals = approvals  # its `on_call` says who the schedules in `who` name now

    def _on_call(self, references: Iterable[str] | None = None) -> list[str]:
        """Who is on call now for the schedules among `references` (default: `who`), read from the cached
        copies core/app/oncall.py keeps (never a fetch on the request path)."""
        rules = self._policy.breakglass
        on_call = self._approvals.on_call if self._approvals is not None else None
        if rules is None or on_call is None:
            return []
        names = [on_call.person(s) for s in (schedule_name(w) for w in (references or rules.who)) if s is not None]
        return [n for n in names if n is not None]

    def _reviewers_on_call(self, request: ApprovalRequest) -> list[str]:
        reviewers = request.breakglass.reviewers if request.breakglass is not None else ()
        return self._on_call(reviewers) if reviewers else []

    def _mention(self, references: Iterable[str], platform: str, excluding: str | None = None) -> Mentions:
        """Groups by their handles, schedules by the person on call now (core/app/oncall.py)."""
        on_call = self._approvals.on_call if self._approvals is not None else None
        if on_call is not None:
            return on_call.mentions(references, platform, excluding=excluding)
        return group_mentions(self._policy, [r for r in references if schedule_name(r) is None], platform,
                              excluding=excluding)

    async def break_glass(self, request_id: RequestId, *, by: Person, reason: str | None,
                          via: str) -> ApprovalRequest:
        request_id = as_request_id(request_id)
        on_call = self._on_call()

        def act(uow: UnitOfWork) -> ApprovalRequest:
            request = self._load(uow, request_id)
            now = self._clock.now()
            owed = [r.id for r in uow.requests.open_reviews(by=by.name)]
            could = tuple(p.name for p in self._policy.eligible(request.sign_rule, excluding=request.requested_by))
            changed = breakglass.break_glass(
                request, by=by, reason=reason, at=now, rules=self._policy.breakglass, source=self._policy.source,
                on_call=on_call, open_review=owed[0] if owed else None, via=via, could_sign=could)
            for signature in changed.request.signatures[len(request.signatures):]:
                uow.requests.add_signature(request.id, signature)
            after = store_transition(uow, request, changed, policy=self._policy, note="")
            uow.outbox.add(review_messages(after, self._policy, now))
            return after

        request = await self._write(act)
        self._signals.execution.set()
        log.info("breakglass.approved", request_id=request.id, person=by.name)
        return request

    async def countersign(self, request_id: RequestId, *, by: Person) -> ApprovalRequest:
        def change(request: ApprovalRequest, now: datetime) -> tuple[Transition, str, Callable[[str], Mentions]]:
            changed = breakglass.countersign(request, by=by, at=now, on_call=self._reviewers_on_call(request))
            return changed, countersigned_text(changed.request, by.name), lambda platform: Mentions()
        return await self._review(request_id, change)

    async def dispute(self, request_id: RequestId, *, by: Person, reason: str | None) -> ApprovalRequest:
        def change(request: ApprovalRequest, now: datetime) -> tuple[Transition, str, Callable[[str], Mentions]]:
            changed = breakglass.dispute(request, by=by, reason=reason, at=now,
                                         on_call=self._reviewers_on_call(request))
            record = changed.request.breakglass
            leads = record.reviewers if record is not None else ()
            return changed, disputed_note(changed.request, by.name), \
                lambda platform: self._mention(leads, platform, excluding=by.name)
        return await self._review(request_id, change)

    async def may_dispute(self, request_id: RequestId, by: Person) -> ApprovalRequest:
        """Raise the refusal a dispute by `by` would get (before asking for the reason)."""
        request = await self._store.read(lambda uow: self._load(uow, as_request_id(request_id)))
        breakglass.dispute(request, by=by, reason="-", at=self._clock.now(), on_call=self._reviewers_on_call(request))
        return request

    async def _review(self, request_id: RequestId, change: Callable[[ApprovalRequest, datetime],
                      tuple[Transition, str, Callable[[str], Mentions]]]) -> ApprovalRequest:
        request_id = as_request_id(request_id)

        def act(uow: UnitOfWork) -> ApprovalRequest:
            request = self._load(uow, request_id)
            changed, note, mentions = change(request, self._clock.now())
            return store_transition(uow, request, changed, policy=self._policy, note=note, mentions=mentions)

        return await self._write(act)

    async def open_reviews(self) -> list[ApprovalRequest]:
        return await self._store.read(lambda uow: uow.requests.open_reviews())

    async def remind_overdue(self) -> int:
        """Reviews past `review_within`: overdue, a reminder in the thread mentioning the reviewers and the
        escalation groups, once (the request's version guards it across replicas)."""
        now = self._clock.now()
        due = [r.id for r in await self.open_reviews()
               if r.breakglass is not None and r.breakglass.reminded_at is None and now >= r.breakglass.review_due]
        reminded = 0
        for request_id in due:
            def act(uow: UnitOfWork, request_id: str = request_id) -> bool:
                request = uow.requests.get(request_id, lock=True)
                if request is None:
                    return False
                try:
                    changed = breakglass.overdue(request, at=now)
                except Refusal:
                    return False  # another replica reminded first
                groups = self._escalation(changed.request)
                store_transition(uow, request, changed, policy=self._policy, note=overdue_note(changed.request),
                                 mentions=lambda platform: self._mention(groups, platform))
                return True
            if await self._store.write(act):
                reminded += 1
                log.info("breakglass.review_overdue", request_id=request_id)
        return reminded

    def _escalation(self, request: ApprovalRequest) -> tuple[str, ...]:
        record = request.breakglass
        reviewers = record.reviewers if record is not None else ()
        escalate = self._policy.rule_for(request.risk).escalate_to
        return tuple(dict.fromkeys([*reviewers, *escalate]))  # schedules: the person on call now

    @staticmethod
    def _load(uow: UnitOfWork, request_id: str) -> ApprovalRequest:
        request = uow.requests.get(request_id, lock=True)
        if request is None:
            raise NotFound(f"There is no request {request_id}; `list` shows the pending ones.")
        return request

    async def _write(self, act: Callable[[UnitOfWork], ApprovalRequest]) -> ApprovalRequest:
        return await self._store.write(act, urgent=True)


def breakglass_handlers(glass: BreakglassService, clock: Clock) -> Handlers:
    async def break_it(command: cmd.BreakGlass, caller: Caller) -> Reply:
        request = await glass.break_glass(command.request, by=caller.person, reason=command.reason,
                                          via=caller.via)
        return Reply(text=broken_text(request), request_id=request.id)

    async def reviews(command: cmd.Reviews, caller: Caller) -> Reply:
        return Reply(text=reviews_text(await glass.open_reviews(), clock.now()))

    async def countersign(command: cmd.Countersign, caller: Caller) -> Reply:
        request = await glass.countersign(command.request, by=caller.person)
        return Reply(text=countersigned_text(request, caller.person.name), request_id=request.id)

    async def dispute(command: cmd.Dispute, caller: Caller) -> Reply:
        request = await glass.dispute(command.request, by=caller.person, reason=command.reason)
        return Reply(text=disputed_note(request, caller.person.name), request_id=request.id)

    async def dispute_form(command: cmd.DisputeForm, caller: Caller) -> Reply:
        request = await glass.may_dispute(command.request, caller.person)
        return Reply(text=dispute_form_text(request), request_id=request.id)

    return (Handlers().add(cmd.BreakGlass, break_it).add(cmd.Reviews, reviews).add(cmd.Countersign, countersign)
            .add(cmd.Dispute, dispute).add(cmd.DisputeForm, dispute_form))
