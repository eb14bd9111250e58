"""The chat command language, shared by Slack, Discord and the console.

Adapters turn a slash command, a button click or a thread message into a call here and
render the `Reply`; every rule and every sentence a person reads lives in the core.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict

from core.app.learning import IncidentService
from core.app.service import ApprovalService, normalize_request_id
from core.chat import learning_texts
from core.chat.cards import progress_bar, status_text, timeline_text
from core.domain.approvals import Place, RequestStatus
from core.domain.operations import ACCEPTED_FORMS_TEXT
from core.domain.policy import Person, Policy, Risk, format_duration
from core.errors import ParseError, SignoffError
from core.ports import Clock

MAX_COMMAND_LENGTH = 2000

HELP_TEXT = (
    "signoff: several people sign a Kubernetes operation in chat; it then runs exactly once.\n"
    "Commands:\n"
    "  request <action> [risk=low|medium|high|critical] [incident=INC-…] [reason=\"…\"]\n"
    "  status <id> · timeline <id> · list · cancel <id> (requester only)\n"
    "  resolve <INC-id> score=<1-5> · playbooks · help\n"
    "Sign or veto with the Approve / Reject buttons on a request's card. In a request's thread,\n"
    "reply `timeline`, `status` or `help`.\n"
) + ACCEPTED_FORMS_TEXT

THREAD_WORDS = ("timeline", "status", "help")

# Said when signoff itself failed (a bug, a database outage) or was restarting mid-action: the
# refusals above cover every rule, but not signoff's own crash. Chat adapters show these.
UNFINISHED_TEXT = {
    "crashed": "⚠️ signoff hit an internal error while handling that, and logged it. Nothing changed unless "
               "the card shows it; check the card or `status <id>` before trying again.",
    "interrupted": "⚠️ signoff was restarting while handling that. Nothing changed unless the card shows it; "
                   "check the card or `status <id>` before trying again.",
}

# Reaction names as Slack sends them and emoji as Discord sends them.
APPROVE_REACTIONS = frozenset({"white_check_mark", "+1", "thumbsup", "heavy_check_mark", "✅", "👍", "✔️"})
REJECT_REACTIONS = frozenset({"x", "-1", "thumbsdown", "❌", "👎"})


class ChatContext(BaseModel):
    """Who typed or clicked, and where."""

    model_config = ConfigDict(frozen=True)

    platform: str
    account: str
    place: Place | None = None
    display_name: str | None = None


class Reply(BaseModel):
    """What the person who acted should see. `private` replies are ephemeral where the platform can."""

    model_config = ConfigDict(frozen=True)

    text: str
    private: bool = True
    ok: bool = True
    request_id: str | None = None


Handler = Callable[[str, Person, ChatContext], Awaitable[Reply]]
VoteHandler = Callable[[str, bool, Person, ChatContext], Awaitable[Reply | None]]


class ChatCommands:
    def __init__(self, *, service: ApprovalService, policy: Policy, clock: Clock) -> None:
        self._service = service
        self._policy = policy
        self._clock = clock
        self._vote: VoteHandler | None = None
        self._handlers: dict[str, Handler] = {
            "request": self._request,
            "status": self._status,
            "timeline": self._timeline,
            "list": self._list,
            "cancel": self._cancel,
            "approve": self._approve,
            "sign": self._approve,
            "reject": self._reject,
            "veto": self._reject,
            "help": self._help,
        }

    def extend(self, name: str, handler: Handler) -> None:
        """Later features (incidents, playbooks) add their commands without touching this module."""
        self._handlers[name] = handler

    def on_vote(self, handler: VoteHandler) -> None:
        """The playbook flow registers how a reaction on one of its offers becomes a vote."""
        self._vote = handler

    def identify(self, ctx: ChatContext) -> Person:
        return self._policy.person(ctx.platform, ctx.account)

    async def handle(self, text: str, ctx: ChatContext) -> Reply:
        """A command typed after `/signoff` (or at the console prompt)."""
        try:
            if len(text) > MAX_COMMAND_LENGTH:
                raise ParseError(f"That command is {len(text)} characters long; keep it under {MAX_COMMAND_LENGTH}.")
            words = text.strip().split(maxsplit=1)
            if not words:
                return Reply(text=HELP_TEXT)
            name, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
            if name == "help":
                return Reply(text=HELP_TEXT)  # anyone may read the help, known to the policy or not
            handler = self._handlers.get(name)
            if handler is None:
                names = ", ".join(sorted(n for n in self._handlers if n not in ("sign", "veto")))
                raise ParseError(f"I don't know the command `{words[0][:30]}`. Commands: {names}. Try `help`.")
            person = self.identify(ctx)
            return await handler(rest.strip(), person, ctx)
        except SignoffError as exc:
            return Reply(text=exc.message, ok=False)

    async def click(self, action: str, value: str, ctx: ChatContext) -> Reply:
        """A button on a card: approve / reject with the request id as value."""
        if action == "approve":
            return await self.handle(f"approve {value}", ctx)
        if action == "reject":
            return await self.handle(f"reject {value}", ctx)
        handler = self._handlers.get(f"button:{action}")
        if handler is None:
            return Reply(text=f"That button ({action[:30]}) is not one signoff knows.", ok=False)
        try:
            return await handler(value, self.identify(ctx), ctx)
        except SignoffError as exc:
            return Reply(text=exc.message, ok=False)

    async def thread_message(self, text: str, request_id: str, ctx: ChatContext) -> bool:
        """A reply in a request's thread. Answers `timeline`, `status`, `help` in the thread; ignores chatter."""
        word = text.strip().lower().strip("!.?`*_")
        if word not in THREAD_WORDS:
            return False
        if word == "help":
            answer = HELP_TEXT
        elif word == "status":
            answer = status_text(await self._service.get(request_id), self._clock.now())
        else:
            answer = timeline_text(request_id, await self._service.timeline(request_id))
        await self._service.request_thread(request_id, answer, place=ctx.place)
        return True

    async def thread_reply(self, thread_id: str, text: str, ctx: ChatContext) -> bool:
        """A message in some chat thread: answered only when the thread is a request's."""
        word = text.strip().lower().strip("!.?`*_")
        if word not in THREAD_WORDS:
            return False
        key = await self._service.key_for_message(ctx.platform, thread_id)
        if key is None or not key.startswith("R-"):
            return False
        return await self.thread_message(word, key, ctx)

    async def reaction(self, message_id: str, reaction: str, ctx: ChatContext) -> Reply | None:
        """A reaction on a message. Only ✅ 👍 ❌ 👎 on a playbook offer mean anything (a vote)."""
        approve = reaction in APPROVE_REACTIONS
        if not approve and reaction not in REJECT_REACTIONS:
            return None
        key = await self._service.key_for_message(ctx.platform, message_id)
        if key is None or not key.startswith("PB-"):
            return None
        return await self.vote(key, approve, ctx)

    async def vote(self, playbook_id: str, approve: bool, ctx: ChatContext) -> Reply:
        if self._vote is None:
            return Reply(text="Playbook votes are not enabled here.", ok=False)
        try:
            reply = await self._vote(playbook_id, approve, self.identify(ctx), ctx)
        except SignoffError as exc:
            return Reply(text=exc.message, ok=False)
        return reply or Reply(text="Vote counted.")

    async def _request(self, rest: str, person: Person, ctx: ChatContext) -> Reply:
        action, risk, incident, reason = split_request_args(rest)
        request = await self._service.request(
            action, by=person, via=ctx.platform, origin=ctx.place, risk=risk, reason=reason, incident_id=incident,
        )
        rule = request.sign_rule
        return Reply(
            text=(
                f"📝 {request.id} posted for approval: `{request.operation.command()}` · risk {request.risk} · "
                f"needs {request.quorum} signature(s) from {rule.describe_approvers()} · expires in "
                f"{format_duration(request.expires_at - request.created_at)}."
            ),
            request_id=request.id,
        )

    async def _status(self, rest: str, person: Person, ctx: ChatContext) -> Reply:
        request = await self._service.get(_one_id(rest, "status"))
        return Reply(text=status_text(request, self._clock.now()), request_id=request.id)

    async def _timeline(self, rest: str, person: Person, ctx: ChatContext) -> Reply:
        subject = _one_id(rest, "timeline")
        if not subject.upper().startswith("INC-"):
            subject = (await self._service.get(subject)).id
        return Reply(text=timeline_text(subject, await self._service.timeline(subject)))

    async def _list(self, rest: str, person: Person, ctx: ChatContext) -> Reply:
        requests = await self._service.pending()
        if not requests:
            return Reply(text="No pending requests. `request <action>` asks for one.")
        now = self._clock.now()
        lines = [f"{len(requests)} open request(s):"]
        for request in requests:
            extra = f"expires in {format_duration(request.expires_at - now)}" \
                if request.status is RequestStatus.pending else str(request.status)
            lines.append(
                f"{request.id} `{request.operation.command()}` · {request.risk} · "
                f"{progress_bar(request.signed, request.quorum)} · by {request.requested_by} · {extra}"
            )
        return Reply(text="\n".join(lines))

    async def _cancel(self, rest: str, person: Person, ctx: ChatContext) -> Reply:
        request = await self._service.cancel(_one_id(rest, "cancel"), by=person, via=ctx.platform)
        return Reply(text=f"🗑️ {request.id} cancelled; nothing will run.", request_id=request.id)

    async def _approve(self, rest: str, person: Person, ctx: ChatContext) -> Reply:
        request = await self._service.sign(_one_id(rest, "approve"), by=person, via=ctx.platform)
        if request.status is RequestStatus.approved:
            tail = "quorum reached: approved, dry run and execution follow."
        else:
            tail = f"{request.quorum - request.signed} more signature(s) needed."
        return Reply(
            text=f"✍️ You signed {request.id} ({progress_bar(request.signed, request.quorum)}): {tail}",
            request_id=request.id,
        )

    async def _reject(self, rest: str, person: Person, ctx: ChatContext) -> Reply:
        request_id, _, reason = rest.partition(" ")
        request = await self._service.reject(
            _one_id(request_id, "reject"), by=person, via=ctx.platform, reason=reason.strip() or None,
        )
        return Reply(text=f"🚫 You vetoed {request.id}; nothing will run.", request_id=request.id)

    async def _help(self, rest: str, person: Person, ctx: ChatContext) -> Reply:
        return Reply(text=HELP_TEXT)


def _one_id(rest: str, command: str) -> str:
    words = rest.split()
    if len(words) != 1:
        raise ParseError(f"`{command}` takes one id, like `{command} R-42`.")
    word = words[0]
    return word.upper() if word.upper().startswith("INC-") else normalize_request_id(word)


_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})
_OPTIONS = ("risk", "incident", "reason")


def split_request_args(rest: str) -> tuple[str, Risk | None, str | None, str | None]:
    """`<action> [risk=…] [incident=…] [reason="…"]` → the action text and its options."""
    try:
        words = shlex.split(rest.translate(_SMART_QUOTES))
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
    if not action_words:
        raise ParseError("`request` needs an action, like `request rollout restart deployment/api -n prod`.\n"
                         + ACCEPTED_FORMS_TEXT)
    risk: Risk | None = None
    if "risk" in options:
        try:
            risk = Risk(options["risk"].lower())
        except ValueError:
            raise ParseError(f"`risk={options['risk'][:20]}` is not a risk level; use low, medium, high or critical.") \
                from None
    incident = options.get("incident")
    if incident is not None:
        incident = incident.upper() if incident.upper().startswith("INC-") else incident
    reason = options.get("reason")
    return " ".join(action_words), risk, incident, (reason or None)


_SCORE = re.compile(r"^(?:score=)?([1-5])$")


def install_learning(chat: ChatCommands, incidents: IncidentService) -> None:
    """The incident and playbook commands: `resolve`, `rate`, `playbooks`, rating buttons, reaction votes."""

    async def resolve(rest: str, person: Person, ctx: ChatContext) -> Reply:
        words = rest.split()
        if len(words) != 2 or not words[0].upper().startswith("INC-") or not _SCORE.match(words[1].lower()):
            raise ParseError("Use `resolve INC-7 score=4`: the incident and how well the fix worked, 1 to 5.")
        score = int(_SCORE.match(words[1].lower()).group(1))  # type: ignore[union-attr]
        incident = await incidents.resolve(words[0], by=person, score=score, via=ctx.platform)
        return Reply(text=learning_texts.resolved_reply(incident.id, score, incidents.rules))

    async def rate_button(value: str, person: Person, ctx: ChatContext) -> Reply:
        incident_id, _, score = value.partition(":")
        return await resolve(f"{incident_id} {score}", person, ctx)

    async def list_playbooks(rest: str, person: Person, ctx: ChatContext) -> Reply:
        return Reply(text=learning_texts.playbooks_text(await incidents.playbooks(), incidents.rules))

    async def vote(playbook_id: str, approve: bool, person: Person, ctx: ChatContext) -> Reply:
        playbook = await incidents.vote(playbook_id, approve=approve, by=person, via=ctx.platform)
        return Reply(text=learning_texts.vote_counted(playbook))

    chat.extend("resolve", resolve)
    chat.extend("rate", resolve)
    chat.extend("playbooks", list_playbooks)
    chat.extend("button:rate", rate_button)
    chat.on_vote(vote)
