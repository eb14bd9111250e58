"""The chat commands' handlers, one per command type, and the dispatcher that routes to them.

Adapters turn a slash command, a button click, typed options, a thread message or a reaction
into a `Command` (see `core.chat.parser`) and render the `Reply`; every rule and every
sentence a person reads lives in the core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import structlog

from core.app.rerequest import request_again
from core.app.service import ApprovalService
from core.chat.cards import status_text, timeline_text
from core.chat.commands import (
    Cancel,
    ChatContext,
    Command,
    CommentForm,
    Help,
    List,
    Malformed,
    Reject,
    Reply,
    Request,
    Rerequest,
    Show,
    Sign,
    Timeline,
    Unreadable,
    Vote,
)
from core.chat.parser import parse_command, parse_thread_reply, thread_word
from core.chat.sentences import (
    HELP_TEXT,
    NOT_ENABLED_TEXT,
    cancelled_text,
    comment_form_text,
    open_requests_text,
    outside_workspace,
    requested_text,
    signed_text,
    vetoed_text,
)
from core.domain import approvals
from core.domain.confirmation import expected_name
from core.domain.ids import AnyId, IncidentId, PlaybookId, RequestId
from core.domain.policy import Person, Policy
from core.errors import ConfirmationNeeded, ParseError, SignoffError
from core.ports import Clock

log = structlog.get_logger(__name__)

# Reaction names as Slack sends them and emoji as Discord sends them.
APPROVE_REACTIONS = frozenset({"white_check_mark", "+1", "thumbsup", "heavy_check_mark", "✅", "👍", "✔️"})
REJECT_REACTIONS = frozenset({"x", "-1", "thumbsdown", "❌", "👎"})
# A card's message and thread exist in chat a moment before signoff books them: the booking commits after
# the post returns (later under load, or when the answer is slow; with replicas, maybe on another one). A
# question or a vote that arrives in that moment is looked up again over these pauses (6.2 s in all),
# instead of being dropped as if it were in someone else's thread.
UNKNOWN_MESSAGE_WAITS_S = (0.2, 0.4, 0.8, 1.6, 3.2)


@dataclass(frozen=True)
class Caller:
    """Who acted and where. `person` is the policy's person behind the account, or a refusal naming the fix."""

    ctx: ChatContext
    policy: Policy

    @property
    def via(self) -> str:
        return self.ctx.platform

    @property
    def person(self) -> Person:
        return self.policy.person(self.ctx.platform, self.ctx.account)


C = TypeVar("C", bound=Command)
Handler = Callable[[C, Caller], Awaitable[Reply]]


class Handlers:
    """Command type → its one handler. `add` ties a handler to the type it takes (checked by mypy)."""

    def __init__(self) -> None:
        self._table: dict[type[Command], Handler[Any]] = {}

    def add(self, kind: type[C], handler: Handler[C]) -> Self:
        if kind in self._table:
            raise ValueError(f"{kind.__name__} has a handler already")
        self._table[kind] = handler
        return self

    def update(self, other: Handlers) -> None:
        for kind, handler in other._table.items():
            self.add(kind, handler)

    def get(self, kind: type[Command]) -> Handler[Any] | None:
        return self._table.get(kind)


class ChatCommands:
    def __init__(self, *, service: ApprovalService, policy: Policy, clock: Clock,
                 more: Handlers | None = None) -> None:
        self._service = service
        self._policy = policy
        self._clock = clock
        self._workspaces: dict[str, str] = {}
        self.handlers = (
            Handlers()
            .add(Request, self._request)
            .add(Show, self._show)
            .add(Timeline, self._timeline)
            .add(List, self._list)
            .add(Cancel, self._cancel)
            .add(Rerequest, self._rerequest)
            .add(Sign, self._sign)
            .add(CommentForm, self._comment_form)
            .add(Reject, self._reject)
            .add(Help, self._help)
            .add(Unreadable, self._refuse)
            .add(Malformed, self._refuse)
        )
        if more is not None:
            self.handlers.update(more)

    # --- routes in -----------------------------------------------------------------------------

    def serve_workspace(self, platform: str, workspace: str) -> None:
        """Only this Slack workspace (team id) or Discord guild may act on `platform`. Without a policy
        file's roster, it is the only boundary of who may sign."""
        self._workspaces[platform] = workspace

    def _outside(self, ctx: ChatContext) -> str | None:
        """A refusal when `ctx` comes from a workspace or guild this signoff does not serve."""
        served = self._workspaces.get(ctx.platform)
        if served is None or ctx.workspace == served:
            return None
        log.warning("chat.outside_workspace", platform=ctx.platform, workspace=ctx.workspace, served=served)
        return outside_workspace(ctx.platform, ctx.workspace, served)

    async def handle(self, text: str, ctx: ChatContext) -> Reply:
        """A command typed after `/signoff` (or at the console prompt)."""
        return await self.run(parse_command(text), ctx)

    async def run(self, command: Command, ctx: ChatContext) -> Reply:
        """Any command (typed, clicked, chosen): the person is identified first unless anyone may run it."""
        refusal = self._outside(ctx)
        if refusal is not None:
            return Reply(text=refusal, ok=False)
        try:
            caller = Caller(ctx=ctx, policy=self._policy)
            if not command.anyone:
                caller.person  # noqa: B018 -- a stranger is told so before anything else
            return await self._handler(command)(command, caller)
        except ConfirmationNeeded as exc:
            return Reply(text=exc.message, ok=False, request_id=exc.request_id, confirm=exc.expected)
        except SignoffError as exc:
            return Reply(text=exc.message, ok=False)

    async def thread_message(self, text: str, request_id: RequestId, ctx: ChatContext) -> bool:
        """A reply in a request's thread. Answers `timeline`, `status`, `help` in the thread; ignores chatter.

        Anyone in the thread may ask (nothing changes); a failure propagates to the adapter.
        """
        command = parse_thread_reply(text, request_id)
        if command is None:
            return False
        reply = await self._handler(command)(command, Caller(ctx=ctx, policy=self._policy))
        await self._service.request_thread(request_id, reply.text, place=ctx.place)
        return True

    async def thread_reply(self, thread_id: str, text: str, ctx: ChatContext) -> bool:
        """A message in some chat thread: answered only when the thread is a request's."""
        if thread_word(text) is None or self._outside(ctx) is not None:
            return False
        key = await self._key_for(ctx.platform, thread_id)
        if not isinstance(key, RequestId):
            return False
        return await self.thread_message(text, key, ctx)

    async def reaction(self, message_id: str, reaction: str, ctx: ChatContext) -> Reply | None:
        """A reaction on a message. Only ✅ 👍 ❌ 👎 on a playbook offer mean anything (a vote)."""
        approve = reaction in APPROVE_REACTIONS
        if (not approve and reaction not in REJECT_REACTIONS) or self._outside(ctx) is not None:
            return None
        key = await self._key_for(ctx.platform, message_id)
        if not isinstance(key, PlaybookId):
            return None
        return await self.run(Vote(playbook=key, approve=approve), ctx)

    async def _key_for(self, platform: str, message_or_thread_id: str) -> AnyId | None:
        """Whose message or thread this is, waiting a little for one signoff may not have booked yet."""
        key = await self._service.key_for_message(platform, message_or_thread_id)
        for pause in UNKNOWN_MESSAGE_WAITS_S:
            if key is not None:
                break
            await asyncio.sleep(pause)
            key = await self._service.key_for_message(platform, message_or_thread_id)
        if key is None:
            log.info("chat.message_not_ours", platform=platform, message_id=message_or_thread_id)
        return key

    def _handler(self, command: Command) -> Handler[Any]:
        handler = self.handlers.get(type(command))
        if handler is None:
            raise ParseError(NOT_ENABLED_TEXT.format(command=type(command).__name__.lower()))
        return handler

    # --- the handlers --------------------------------------------------------------------------

    async def _request(self, command: Request, caller: Caller) -> Reply:
        request = await self._service.request(
            command.action, by=caller.person, via=caller.via, origin=caller.ctx.place, risk=command.risk,
            reason=command.reason, incident_id=command.incident, cluster=command.cluster,
        )
        return Reply(text=requested_text(request), request_id=request.id)

    async def _show(self, command: Show, caller: Caller) -> Reply:
        request = await self._service.get(command.request)
        return Reply(text=status_text(request, self._clock.now()), request_id=request.id)

    async def _timeline(self, command: Timeline, caller: Caller) -> Reply:
        subject = command.subject
        if not isinstance(subject, IncidentId):
            await self._service.get(subject)  # a request's timeline is shown only when the request exists
        return Reply(text=timeline_text(subject, await self._service.timeline(subject)))

    async def _list(self, command: List, caller: Caller) -> Reply:
        return Reply(text=open_requests_text(await self._service.pending(), self._clock.now()))

    async def _cancel(self, command: Cancel, caller: Caller) -> Reply:
        request = await self._service.cancel(command.request, by=caller.person, via=caller.via)
        return Reply(text=cancelled_text(request), request_id=request.id)

    async def _rerequest(self, command: Rerequest, caller: Caller) -> Reply:
        return await request_again(self._service, command.request, by=caller.person, via=caller.via,
                                   origin=caller.ctx.place)

    async def _sign(self, command: Sign, caller: Caller) -> Reply:
        request = await self._service.sign(command.request, by=caller.person, via=caller.via,
                                           comment=command.comment, confirmation=command.confirm)
        return Reply(text=signed_text(request), request_id=request.id)

    async def _comment_form(self, command: CommentForm, caller: Caller) -> Reply:
        """Before a form opens: refused now, as the signature would be, rather than after the typing."""
        request = await self._service.get(command.request)
        approvals.may_sign(request, caller.person, self._clock.now())
        return Reply(text=comment_form_text(request), request_id=request.id,
                     confirm=expected_name(request) if request.confirm else None)

    async def _reject(self, command: Reject, caller: Caller) -> Reply:
        request = await self._service.reject(command.request, by=caller.person, via=caller.via,
                                             reason=command.reason)
        return Reply(text=vetoed_text(request), request_id=request.id)

    async def _help(self, command: Help, caller: Caller) -> Reply:
        return Reply(text=HELP_TEXT)

    async def _refuse(self, command: Unreadable | Malformed, caller: Caller) -> Reply:
        raise ParseError(command.message)

