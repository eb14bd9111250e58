"""Who is on call now, from each `[oncall.<name>]` feed's last good copy (read in the background, never here),
and the mentions that page them: a risk level's `page` on the card's first post, `oncall.<name>` in
`escalate_to`. A schedule with no copy at all falls back to the level's groups."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from core.app.notify import group_mentions
from core.chat.cards import Mentions
from core.domain.approvals import ApprovalRequest
from core.domain.calendar import CalendarEvent
from core.domain.oncall import on_call_now, schedule_name
from core.domain.policy import Policy, SignRule


class ScheduleFeed(Protocol):
    def occurrences(self) -> list[CalendarEvent] | None: ...


class OnCall:
    """The schedules' people now; unknown (None) when a schedule's feed has no copy yet or names nobody."""

    def __init__(self, policy: Policy, feeds: Mapping[str, ScheduleFeed], now: Callable[[], datetime]) -> None:
        self._policy = policy
        self._feeds = dict(feeds)
        self._now = now
        self._people = {p.name: p.email for p in policy.people.values()}
        # Per schedule: the copy it was computed from, the interval in which no event starts or ends (so the
        # answer holds throughout), and the answer. A card costs a look-up, not a scan of the feed.
        self._answers: dict[str, tuple[list[CalendarEvent], datetime, datetime, str | None]] = {}

    def has_copy(self, schedule: str) -> bool:
        feed = self._feeds.get(schedule)
        return feed is not None and feed.occurrences() is not None

    def person(self, schedule: str, at: datetime | None = None) -> str | None:
        feed = self._feeds.get(schedule)
        events = feed.occurrences() if feed is not None else None
        if events is None:
            return None
        at = at or self._now()
        cached = self._answers.get(schedule)
        if cached is not None and cached[0] is events and cached[1] <= at < cached[2]:
            return cached[3]
        answer = on_call_now(events, at, self._people)
        edges = [edge for event in events for edge in (event.start, event.end)]
        since = max((edge for edge in edges if edge <= at), default=at)
        until = min((edge for edge in edges if edge > at), default=at + timedelta(days=1))
        self._answers[schedule] = (events, since, until, answer)
        return answer

    def mentions(self, references: Iterable[str], platform: str, *, fallback: Iterable[str] = (),
                 excluding: str | None = None) -> Mentions:
        """The person on call for each `oncall.<name>` in `references` and each plain group; a schedule that
        has no copy or names nobody known is replaced by the `fallback` groups (the level's approvers)."""
        users: list[str] = []
        groups: list[str] = []
        fall_back = False
        for reference in references:
            schedule = schedule_name(reference)
            if schedule is None:
                groups.append(reference)
                continue
            name = self.person(schedule)
            person = self._policy.people.get(name) if name is not None else None
            account = person.account(platform) if person is not None else None
            if account is None or name == excluding:
                fall_back = fall_back or account is None
                continue
            users.append(account)
        others = group_mentions(self._policy, [*groups, *(fallback if fall_back else ())], platform,
                                excluding=excluding)
        return merge(Mentions(users=tuple(users)), others)


def first_post_mentions(
    signers: Mentions, on_call: OnCall | None, rule: SignRule, request: ApprovalRequest, platform: str,
) -> Mentions:
    """Who can sign, and the people on call of the level's `page` schedules (or, without a copy, its groups)."""
    if on_call is None or not rule.page:
        return signers
    return merge(signers, on_call.mentions(rule.page, platform, fallback=request.approvers,
                                           excluding=request.requested_by))


def merge(*all_mentions: Mentions) -> Mentions:
    return Mentions(users=tuple(dict.fromkeys(u for m in all_mentions for u in m.users)),
                    groups=tuple(dict.fromkeys(g for m in all_mentions for g in m.groups)))


def no_on_call(policy: Policy) -> OnCall:
    return OnCall(policy, {}, lambda: datetime.min)
