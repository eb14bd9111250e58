"""The break glass commands: `breakglass <R-id> reason="…"` (alone: the open reviews), `countersign <R-id>`,
`dispute <R-id> reason="…"`, and the review message's Countersign / Dispute buttons."""

from __future__ import annotations

import shlex

from core.chat.commands import Command, Malformed
from core.chat.text import plain_quotes
from core.domain.ids import RequestId, parse_request_id
from core.errors import ParseError

BREAKGLASS_USAGE = 'Use `breakglass R-42 reason="why it cannot wait"`, or `breakglass` alone for the open reviews.'
DISPUTE_USAGE = 'Use `dispute R-42 reason="why it was not justified"`.'


class BreakGlass(Command):
    request: RequestId
    reason: str | None = None


class Reviews(Command):
    """`breakglass` alone: the break glass reviews still owed."""


class Countersign(Command):
    request: RequestId


class Dispute(Command):
    request: RequestId
    reason: str | None = None


class DisputeForm(Command):
    """The Dispute button: may this person dispute? The answer says how to give the reason."""

    request: RequestId


def _id_and_reason(rest: str, usage: str) -> tuple[RequestId, str | None]:
    try:
        words = shlex.split(plain_quotes(rest))
    except ValueError:
        raise ParseError(usage) from None
    if not words:
        raise ParseError(usage)
    reason: str | None = None
    others = []
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if sep and key.lower() == "reason":
            reason = value
        else:
            others.append(word)
    if others:  # `breakglass R-1 nobody answers` reads as the reason too
        reason = " ".join([*(others if reason is None else [reason, *others])])
    return parse_request_id(words[0]), (reason or "").strip() or None


def read_breakglass(rest: str) -> Command:
    if not rest.strip():
        return Reviews()
    request, reason = _id_and_reason(rest, BREAKGLASS_USAGE)
    return BreakGlass(request=request, reason=reason)


def read_countersign(rest: str) -> Command:
    words = rest.split()
    if len(words) != 1:
        raise ParseError("`countersign` takes one id, like `countersign R-42`.")
    return Countersign(request=parse_request_id(words[0]))


def read_dispute(rest: str) -> Command:
    request, reason = _id_and_reason(rest, DISPUTE_USAGE)
    return Dispute(request=request, reason=reason)


def from_options(word: str, request: str | None, reason: str | None = None) -> Command:
    """Typed options (Discord's `/signoff breakglass id:R-1 reason:…`, `countersign`, `dispute`)."""
    try:
        if word == "breakglass" and not (request or "").strip():
            return Reviews()
        request_id = parse_request_id((request or "").strip())
        reason = (reason or "").strip() or None
        if word == "countersign":
            return Countersign(request=request_id)
        if word == "dispute":
            return Dispute(request=request_id, reason=reason)
        return BreakGlass(request=request_id, reason=reason)
    except ParseError as exc:
        return Malformed(message=exc.message)



def from_dispute_form(request_id: str, reason: str | None) -> Command:
    """The dispute form's submission (Slack's modal): the dispute with that reason."""
    try:
        return Dispute(request=parse_request_id(request_id), reason=(reason or "").strip() or None)
    except ParseError as exc:
        return Malformed(message=exc.message)
