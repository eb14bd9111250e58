"""Sources of commands: typed text, a thread reply, a button click, typed options.

Each function turns what arrived into one `Command` and never raises for a person's mistake:
text that does not read becomes `Unreadable` (told to anyone) or `Malformed` (told once the
person is identified), so every source behaves the same way as `/signoff` text.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from core.chat import breakglass_commands as glass
from core.chat.cards import ButtonAction
from core.chat.commands import (
    Cancel,
    Command,
    CommentForm,
    Help,
    Incidents,
    List,
    Malformed,
    Playbooks,
    Rate,
    Reject,
    Request,
    Rerequest,
    Resolve,
    Show,
    Sign,
    Timeline,
    Unreadable,
)
from core.chat.sentences import ACTION_NEEDED_TEXT, APPROVE_USAGE, RESOLVE_USAGE, comment_too_long_text
from core.chat.text import clean_text, plain_quotes
from core.domain.approvals import MAX_COMMENT_LENGTH
from core.domain.ids import IncidentId, RequestId, parse_incident_id, parse_request_id, parse_subject
from core.domain.operations import CLUSTER_NAME
from core.domain.policy import Risk
from core.errors import ParseError, SignoffError

MAX_COMMAND_LENGTH = 2000

_OPTIONS = ("risk", "incident", "reason", "cluster")
_SCORE = re.compile(r"(?:score=)?([1-5])")
_THREAD_PUNCTUATION = "!.?`*_"


def _one_id(rest: str, word: str) -> RequestId:
    words = rest.split()
    if len(words) != 1:
        raise ParseError(f"`{word}` takes one id, like `{word} R-42`.")
    return parse_request_id(words[0])


def _request(rest: str) -> Command:
    return request_from_text(rest)


def _reject(rest: str) -> Command:
    request_id, _, reason = rest.partition(" ")
    return Reject(request=_one_id(request_id, "reject"), reason=reason.strip() or None)


def _approve(rest: str) -> Command:
    """`approve R-42`, with `comment="checked the dashboards"` and/or `confirm=api` (the target's name)."""
    try:
        words = shlex.split(plain_quotes(rest))
    except ValueError as exc:
        raise ParseError(f"I couldn't read that ({exc}); close every quote, like comment=\"looks good\".") from None
    if not words:
        raise ParseError(APPROVE_USAGE)
    given: dict[str, str] = {}
    for word in words[1:]:
        key, equals, value = word.partition("=")
        if not equals or key.lower() not in ("comment", "confirm") or key.lower() in given:
            raise ParseError(APPROVE_USAGE)
        given[key.lower()] = value
    return _signed(parse_request_id(words[0]), given.get("comment"), given.get("confirm"))


def _signed(request_id: RequestId, comment: str | None, confirm: str | None = None) -> Sign:
    """A signature, with the comment trimmed (a blank one is none) and within its limit."""
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT_LENGTH:
        raise ParseError(comment_too_long_text(len(comment)))
    return Sign(request=request_id, comment=comment or None, confirm=confirm[:200] if confirm is not None else None)


def from_comment(request_id: str, comment: str | None) -> Command:
    """The comment form's submission (a Slack or Discord modal): a signature with that comment."""
    return _reading(lambda: _signed(parse_request_id(request_id), comment))


def from_confirmation(request_id: str, typed: str | None, comment: str | None = None) -> Command:
    """The typed-confirmation form's submission: a signature with the name as typed (and a comment)."""
    return _reading(lambda: _signed(parse_request_id(request_id), comment, typed or ""))


def _timeline(rest: str) -> Command:
    words = rest.split()
    if len(words) != 1:
        raise ParseError("`timeline` takes one id, like `timeline R-42`.")
    return Timeline(subject=parse_subject(words[0]))


def _resolve(rest: str) -> Command:
    words = rest.split()
    if len(words) != 2:
        raise ParseError(RESOLVE_USAGE)
    return resolution(words[0], words[1], Resolve)


def resolution(incident: str, score: str, kind: type[Resolve]) -> Command:
    """`INC-7` and `4` / `score=4` (typed, or a rating button's value) → Resolve or Rate."""
    incident_id = IncidentId.stored(incident.strip().upper())
    found = _SCORE.fullmatch(score.strip().lower())
    if incident_id is None or found is None:
        raise ParseError(RESOLVE_USAGE)
    return kind(incident=incident_id, score=int(found.group(1)))


# The command words typed after `/signoff` (or at the console prompt); `rest` is what follows.
WORDS: dict[str, Callable[[str], Command]] = {
    "request": _request,
    "status": lambda rest: Show(request=_one_id(rest, "status")),
    "timeline": _timeline,
    "list": lambda rest: List(),
    "cancel": lambda rest: Cancel(request=_one_id(rest, "cancel")),
    "rerequest": lambda rest: Rerequest(request=_one_id(rest, "rerequest")),
    "approve": _approve,
    "sign": _approve,
    "reject": _reject,
    "veto": _reject,
    "resolve": _resolve,
    "rate": _resolve,
    "playbooks": lambda rest: Playbooks(),
    "incidents": lambda rest: Incidents(),
    "help": lambda rest: Help(),
    "breakglass": glass.read_breakglass,
    "countersign": glass.read_countersign,
    "dispute": glass.read_dispute,
}
_ALIASES = frozenset({"sign", "veto"})


def parse_command(text: str) -> Command:
    """A command typed after `/signoff`, at the console prompt, or sent by the HTTP-mode slash command."""
    text = clean_text(text)
    if len(text) > MAX_COMMAND_LENGTH:
        return Unreadable(message=f"That command is {len(text)} characters long; keep it under "
                                  f"{MAX_COMMAND_LENGTH}.")
    words = text.strip().split(maxsplit=1)
    if not words:
        return Help()
    name, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
    read = WORDS.get(name)
    if read is None:
        names = ", ".join(sorted(n for n in WORDS if n not in _ALIASES))
        return Unreadable(message=f"I don't know the command `{words[0][:30]}`. Commands: {names}. Try `help`.")
    return _reading(lambda: read(rest.strip()))


THREAD_WORDS: dict[str, Callable[[RequestId], Command]] = {
    "timeline": lambda request_id: Timeline(subject=request_id),
    "status": lambda request_id: Show(request=request_id),
    "help": lambda request_id: Help(),
}


def thread_word(text: str) -> str | None:
    """The one word signoff answers in a request's thread (`timeline`, `status`, `help`), if it is one."""
    word = text.strip().lower().strip(_THREAD_PUNCTUATION)
    return word if word in THREAD_WORDS else None


def parse_thread_reply(text: str, request_id: RequestId) -> Command | None:
    """A reply in a request's thread: a command about that request, or None for chatter."""
    word = thread_word(text)
    return THREAD_WORDS[word](request_id) if word is not None else None


def _rating(value: str) -> Command:
    incident, _, score = value.partition(":")  # `INC-7:4`
    return resolution(incident, score, Rate)


# The card buttons: each maps its value straight to a command (a new button: one line here).
BUTTONS: dict[ButtonAction, Callable[[str], Command]] = {
    ButtonAction.approve: lambda value: Sign(request=_one_id(value, "approve")),
    ButtonAction.approve_comment: lambda value: CommentForm(request=_one_id(value, "approve")),
    ButtonAction.reject: lambda value: Reject(request=_one_id(value, "reject")),
    ButtonAction.rate: _rating,
    ButtonAction.rerequest: lambda value: Rerequest(request=_one_id(value, "rerequest")),
    ButtonAction.countersign: lambda value: glass.Countersign(request=_one_id(value, "countersign")),
    ButtonAction.dispute: lambda value: glass.DisputeForm(request=_one_id(value, "dispute")),
}


def from_button(action: str, value: str) -> Command:
    """A click on a card's button: `approve`/`reject` with a request id, `rate` with `INC-7:4`."""
    known = action in ButtonAction.__members__.values()
    read = BUTTONS.get(ButtonAction(action)) if known else None
    if read is None:
        return Unreadable(message=f"That button ({action[:30]}) is not one signoff knows.")
    return _reading(lambda: read(value))


def request_command(action: str, risk: str | Risk | None = None, incident: str | None = None,
                    reason: str | None = None, cluster: str | None = None) -> Request:
    """A request from its parts (typed options, or the text parser's split): the one place they are read."""
    action = " ".join(action.split())
    if not action:
        raise ParseError(ACTION_NEEDED_TEXT)
    level: Risk | None = None
    if risk is not None:
        try:
            level = Risk(str(risk).lower())
        except ValueError:
            raise ParseError(f"`risk={str(risk)[:20]}` is not a risk level; use low, medium, high or critical.") \
                from None
    incident_id = parse_incident_id(incident) if incident is not None else None
    reason = plain_quotes(reason).strip() if reason else None
    if cluster is not None and not CLUSTER_NAME.fullmatch(cluster):
        raise ParseError(f"`cluster={cluster[:40]}` is not a cluster name; write it like cluster=eu-1.")
    return Request(action=action, risk=level, incident=incident_id, reason=reason or None, cluster=cluster)


def from_options(action: str, risk: str | None = None, incident: str | None = None,
                 reason: str | None = None, cluster: str | None = None) -> Command:
    """Typed options (Discord's `/signoff request`): a command without ever becoming text."""
    action, reason = clean_text(action), clean_text(reason) if reason is not None else None
    named = (cluster or "").strip() or None
    return _reading(lambda: request_command(action, risk, (incident or "").strip() or None, reason, named))


def for_request(kind: type[Show | Cancel | Sign], subject: str) -> Command:
    """A typed id option (Discord's `/signoff status id:R-42`) → the command about that request."""
    return _reading(lambda: kind(request=parse_request_id(subject)))


def for_subject(subject: str) -> Command:
    """`/signoff timeline id:…`: a request or an incident."""
    return _reading(lambda: Timeline(subject=parse_subject(subject)))


def for_incident(kind: type[Resolve], incident: str, score: int) -> Command:
    """`/signoff resolve incident:INC-7 score:4`."""
    return _reading(lambda: resolution(incident, str(score), kind))


def split_request_args(rest: str) -> tuple[str, Risk | None, IncidentId | None, str | None]:
    """`<action> [risk=…] [incident=…] [reason="…"]` → the action text and its options."""
    request = request_from_text(rest)
    return request.action, request.risk, request.incident, request.reason


def request_from_text(rest: str) -> Request:
    """`<action> [risk=…] [incident=…] [reason="…"] [cluster=…]` → the request command."""
    try:
        words = shlex.split(plain_quotes(rest))
    except ValueError as exc:
        raise ParseError(f"I couldn't read that request ({exc}); close every quote, like reason=\"db is slow\".") \
            from None
    action_words: list[str] = []
    options: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key.lower() in _OPTIONS:
            if key.lower() in options:
                raise ParseError(f"`{key}` is given twice.")
            options[key.lower()] = value
        else:
            action_words.append(word)
    return request_command(" ".join(action_words), options.get("risk"), options.get("incident"),
                           options.get("reason"), options.get("cluster"))


def _reading(read: Callable[[], Command]) -> Command:
    try:
        return read()
    except SignoffError as exc:
        return Malformed(message=exc.message)
