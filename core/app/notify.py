"""Which outbox messages a change to a request causes. Pure: returns messages, stores nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from core.chat.cards import Mentions, result_text
from core.chat.messages import MessageKind, NewMessage
from core.domain.approvals import ApprovalRequest, Place, RequestStatus
from core.domain.policy import ANYONE, Policy, Risk

# Who a message pages on one platform.
MentionsFor = Callable[[str], Mentions]


def card_posts(request: ApprovalRequest, mentions: MentionsFor | None = None) -> list[NewMessage]:
    """A new card's first post pages who can sign (the only post that does: updates mention nobody)."""
    return [
        NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.card, key=request.id,
                   mentions=mentions(p.platform) if mentions is not None else Mentions())
        for p in request.places
    ]


def direct_pages(policy: Policy, request: ApprovalRequest) -> list[NewMessage]:
    """A critical request is also sent to each eligible approver directly, linking to its card.

    One message per person, on the first of the request's platforms where they have an account.
    """
    if request.risk is not Risk.critical or policy.open:
        return []
    text = (f"🔴 {request.requested_by} asks for a critical operation and needs {request.quorum} signature(s) "
            f"from {request.sign_rule.describe_approvers()}: {request.id} `{request.operation.command()}`. "
            "Sign on the card:")
    messages = []
    for person in policy.eligible(request.sign_rule, excluding=request.requested_by):
        for place in request.places:
            account = person.account(place.platform)
            if account:
                messages.append(NewMessage(platform=place.platform, channel=account, kind=MessageKind.direct,
                                           key=request.id, text=text))
                break
    return messages


def group_mentions(policy: Policy, groups: Iterable[str], platform: str, *, excluding: str | None = None) -> Mentions:
    """Each group by its chat handle on `platform`; a group without one, by each of its members."""
    handles: list[str] = []
    users: list[str] = []
    for group in groups:
        handles_of = policy.groups.get(group)
        handle = handles_of.handle(platform) if handles_of is not None else None
        if handle is not None:
            handles.append(handle)
            continue
        for person in policy.people.values():
            account = person.account(platform)
            if (group == ANYONE or group in person.groups) and person.name != excluding and account:
                users.append(account)
    return Mentions(users=tuple(dict.fromkeys(users)), groups=tuple(dict.fromkeys(handles)))


def who_can_sign(policy: Policy, request: ApprovalRequest, platform: str) -> Mentions:
    """The approver groups' handles, or else each eligible person (never the requester)."""
    return group_mentions(policy, request.approvers, platform, excluding=request.requested_by)


def people_mentions(policy: Policy, names: Iterable[str], platform: str) -> Mentions:
    accounts = []
    for name in names:
        account = _account(policy, name, platform)
        if account is not None:
            accounts.append(account)
    return Mentions(users=tuple(dict.fromkeys(accounts)))


def not_yet_signed(policy: Policy, request: ApprovalRequest) -> list[str]:
    """The people who could still sign: eligible, not the requester, not signed already."""
    signed = set(request.signers)
    return [p.name for p in policy.eligible(request.sign_rule, excluding=request.requested_by)
            if p.name not in signed]


def _account(policy: Policy, name: str, platform: str) -> str | None:
    person = policy.people.get(name)
    if person is not None:
        return person.account(platform)
    # Without a roster a person is known by their account: `slack:U0ALICE`.
    prefix = f"{platform}:"
    return name.removeprefix(prefix) if name.startswith(prefix) else None


def card_updates(request: ApprovalRequest) -> list[NewMessage]:
    return [
        NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.card_update, key=request.id)
        for p in request.places
    ]


def thread_replies(
    request: ApprovalRequest, text: str, places: Iterable[Place] | None = None, mentions: MentionsFor | None = None,
) -> list[NewMessage]:
    return [
        NewMessage(platform=p.platform, channel=p.channel, kind=MessageKind.thread, key=request.id, text=text,
                   mentions=mentions(p.platform) if mentions is not None else Mentions())
        for p in (request.places if places is None else places)
    ]


def routed(defaults: dict[str, str], origin: Place | None) -> tuple[Place, ...]:
    """The origin place first, then the default channel of every other configured platform."""
    chosen: list[Place] = [origin] if origin is not None else []
    for platform, channel in defaults.items():
        if not any(p.platform == platform for p in chosen):
            chosen.append(Place(platform=platform, channel=channel))
    return tuple(chosen)


def pages_requester(request: ApprovalRequest) -> bool:
    """Expiry and veto notes page the requester: their request will not run."""
    return request.status in (RequestStatus.rejected, RequestStatus.expired)


def status_note(request: ApprovalRequest) -> str | None:
    """The thread message a state change deserves, if any (signatures only update the card)."""
    status = request.status
    if status in (RequestStatus.succeeded, RequestStatus.failed, RequestStatus.blocked,
                  RequestStatus.stale) and request.outcome:
        return result_text(request)
    if status is RequestStatus.approved:
        return f"✅ {request.id} approved by {', '.join(request.counted_signers)}: dry run and execution follow."
    if status is RequestStatus.rejected:
        return f"🚫 {request.id} vetoed by {request.decided_by}; nothing will run."
    if status is RequestStatus.cancelled:
        return f"🗑️ {request.id} cancelled by {request.decided_by}; nothing will run."
    if status is RequestStatus.interrupted:
        return (f"⚠️ {request.id} was interrupted mid-flight (signoff stopped while executing); "
                "the outcome is unknown. Check the cluster; signoff will not re-run it.")
    if status is RequestStatus.expired:
        if request.approved_at is not None:
            return (f"⌛ {request.id} expired: approved at {request.approved_at:%H:%M UTC} but not run within "
                    "the expiry window, and nothing runs on a stale approval. Ask again if still needed.")
        return (f"⌛ {request.id} expired with {request.signed}/{request.quorum} signatures; nothing ran. "
                "Ask again if it is still needed.")
    return None
