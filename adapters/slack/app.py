"""Slack: a slack_bolt AsyncApp whose listeners acknowledge at once and hand the work on.

How a click travels: Bolt verifies the signature (HTTP mode) → the global middleware (guard.py) checks the
workspace and drops a duplicate delivery → our listener calls
`ChatCommands.run(from_button(...))` (one short database transaction in the core: the signature is
stored) → `ack()` → Bolt answers Slack → a job tells the person the core's reply privately
(the payload's response_url, else chat.postEphemeral) → the card update and thread notes go
out through the outbox. Slash commands (which may read the cluster) are acknowledged first
and run as a job.

Why `process_before_response=True`, although nothing slow happens before the answer:
with `False`, Bolt starts every listener with a bare `asyncio.ensure_future` that nothing
keeps or awaits (lost on shutdown, unsupervised), and its ack runner then polls every
10 ms for `ack()`. With `True` the listener runs inline in the request, does nothing but
`ack()` and a hand-off, and Bolt answers as soon as it returns: no Bolt-owned tasks, no
polling delay. The work itself runs as a supervised job (`Jobs`: kept, drained on shutdown),
never on the acknowledgement path, and a job that does not finish is told to the person
who acted. What a listener raises goes to Bolt's `app.error` (guard.py): acknowledged, and told.

Bolt calls `auth.test` lazily on the first request, i.e. on somebody's acknowledgement
path, and again after any failure. We call it once at start-up (which also refuses a bad
token with a clear message) and hand Bolt the result through `authorize`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack import translate
from adapters.slack.dispute import DISPUTE_CALLBACK_ID, dispute_listener, dispute_view
from adapters.slack.gateway import BAD_TOKEN_ERRORS, SlackGateway, build_web_client
from adapters.slack.guard import Guard, Seen, SeenInMemory
from adapters.slack.jobs import Jobs
from adapters.slack.render import (
    COMMENT_BLOCK_ID,
    COMMENT_CALLBACK_ID,
    CONFIRM_BLOCK_ID,
    CONFIRM_CALLBACK_ID,
    VIEW_ERROR_MAX,
    comment_view,
    confirm_view,
)
from adapters.slack.replies import Replies
from adapters.slack.socket import socket_mode
from adapters.slack.translate import Click, ReactionVote, Responder, SlashCommand, ThreadMessage
from core.app.handlers import ChatCommands
from core.chat.cards import ButtonAction
from core.chat.commands import Reply
from core.chat.parser import from_button, from_comment, from_confirmation
from core.chat.sentences import UNFINISHED_TEXT, comment_form_failed_text
from core.chat.text import clip
from core.domain.approvals import Place
from core.errors import SignoffError
from core.ports import GatewayRegistry

log = structlog.get_logger(__name__)

EVENTS_PATH = "/slack/events"

AUTH_UNAVAILABLE_TEXT = "⚠️ signoff cannot reach Slack's API right now, so nothing was done; try again in a minute."

_EVERYTHING = re.compile(r".*")
MAX_OPEN_FORMS = 1000


class SlackConfig(BaseModel):
    """What the Slack adapter needs to know, and nothing else (bot/chats/slack.py builds it from settings)."""

    model_config = ConfigDict(frozen=True)

    bot_token: str = Field(repr=False)
    api_url: str = "https://slack.com/api/"
    signing_secret: str | None = Field(default=None, repr=False)
    app_token: str | None = Field(default=None, repr=False)
    channel: str | None = None
    timeout_s: int = 10

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None


class SlackAdapter:
    def __init__(self, chat: ChatCommands, config: SlackConfig, *, jobs: Jobs | None = None,
                 seen: Seen | None = None) -> None:
        self.chat = chat
        self.config = config
        self.jobs = jobs or Jobs()
        # Deliveries already handled: the database's (shared by replicas) in `signoff run`.
        self.seen: Seen = seen or SeenInMemory()
        # The bot token lives in this client (the gateway's and the private replies'); Bolt gets a
        # token-less twin and the token through `authorize`, so it never calls auth.test itself.
        self.client = build_web_client(config.bot_token, config.api_url, timeout=config.timeout_s)
        self._bolt_client = build_web_client(None, config.api_url, timeout=config.timeout_s)
        self.gateway = SlackGateway(self.client)
        self.bot_user_id: str | None = None
        self._auth: AuthorizeResult | None = None
        self._auth_lock = asyncio.Lock()
        self.replies = Replies(self.client, config.timeout_s)
        # Where each open confirmation form was opened (view id → channel), for the private answer after it;
        # its private_metadata is the request id alone. Bounded: a form nobody submits is forgotten.
        self._confirm_channels: OrderedDict[str, str] = OrderedDict()
        self.bolt = AsyncApp(
            name="signoff",
            client=self._bolt_client,
            signing_secret=config.signing_secret or "",
            authorize=self._bolt_authorize(),
            process_before_response=True,
            logger=logging.getLogger("slack_bolt.signoff"),
            # Shown (via response_url) when auth.test could not be done yet; Bolt's default asks to reinstall.
            user_facing_authorize_error_message=AUTH_UNAVAILABLE_TEXT,
        )
        self._register()

    # ------------------------------------------------------------------ lifetime

    def attach(self, gateways: GatewayRegistry, http: web.Application | None = None) -> None:
        """Plug into the process: the outbox gateway (with the configured channel as the place for API and
        alert requests) and, in HTTP mode, POST /slack/events on the one aiohttp application.

        Enter `running()` to authenticate and start receiving.
        """
        if not self.config.socket_mode:
            if http is None:
                raise ValueError("Slack HTTP mode needs the aiohttp application to mount /slack/events on")
            http.router.add_post(EVENTS_PATH, self.handle_http)
        gateways.register(self.gateway, self.config.channel)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Authenticate, start the job group and (Socket Mode) the websocket; undo it all in reverse.

        On the way out: stop receiving, let jobs in flight finish, then close the HTTP session.
        """
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_s))
        self._use_session(session)
        try:
            await self.authenticate()
            async with self.jobs.running(), contextlib.AsyncExitStack() as stack:
                if self.config.app_token is not None:
                    await stack.enter_async_context(socket_mode(self.bolt, self._bolt_client, self.config.app_token))
                yield
        finally:
            self._use_session(None)
            await session.close()

    def _use_session(self, session: aiohttp.ClientSession | None) -> None:
        # One pooled session for every Web API call while running; slack_sdk opens one per call otherwise.
        self.replies.session = session
        self.client.session = session
        self._bolt_client.session = session

    async def authenticate(self) -> AuthorizeResult | None:
        """auth.test once; a bad token stops start-up, an unreachable Slack only delays it to the first request."""
        async with self._auth_lock:
            if self._auth is not None:
                return self._auth
            try:
                response = await self.client.auth_test()
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "")
                if error in BAD_TOKEN_ERRORS:
                    raise SignoffError(
                        f"Slack refused SLACK_BOT_TOKEN ({error}). Copy the Bot User OAuth Token (xoxb-…) from "
                        "your Slack app's OAuth & Permissions page, and reinstall the app if you changed its scopes."
                    ) from None
                log.warning("slack.auth_test_failed", error=error or str(exc.response.status_code))
                return None
            except (aiohttp.ClientError, SlackClientError, TimeoutError, OSError) as exc:
                log.warning("slack.auth_test_failed", error=type(exc).__name__)
                return None
            self._auth = AuthorizeResult.from_auth_test_response(
                auth_test_response=response, bot_token=self.config.bot_token,
            )
            self.bot_user_id = self._auth.bot_user_id
            if self._auth.team_id:
                # Commands, clicks, replies and reactions from any other workspace are refused.
                self.chat.serve_workspace("slack", self._auth.team_id)
            log.info("slack.authenticated", team_id=self._auth.team_id, bot_user_id=self.bot_user_id,
                     mode="socket" if self.config.socket_mode else "http")
            return self._auth

    def _bolt_authorize(self) -> Callable[[], Awaitable[AuthorizeResult]]:
        # A plain function: Bolt injects arguments by parameter name, and would pass a bound method's `self`.
        async def authorize() -> AuthorizeResult:
            # Called by Bolt for every request: cached after start-up, so no Web API call on the ack path.
            auth = self._auth or await self.authenticate()
            if auth is None:
                # Bolt turns this into its "please try again" answer to the person.
                raise SlackApiError("auth.test failed", {"ok": False, "error": "auth_unavailable"})  # type: ignore[no-untyped-call]
            return auth

        return authorize

    # ------------------------------------------------------------------ HTTP mode

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """POST /slack/events: Bolt checks the signature and timestamp (401 otherwise) and dispatches."""
        raw = await request.read()
        bolt_request = AsyncBoltRequest(
            body=raw.decode("utf-8", "replace"), query=request.query_string,
            headers={name: value for name, value in request.headers.items()},
        )
        response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    # ------------------------------------------------------------------ listeners (the ack path)

    def _register(self) -> None:
        # The workspace boundary and duplicates: one global middleware; failures: `app.error` (guard.py).
        guard = Guard(seen=lambda: self.seen, served=lambda: self._auth.team_id if self._auth else None,
                      bot_user=lambda: self.bot_user_id, tell=self.tell,
                      submit=self.jobs.submit)
        self.bolt.use(guard.middleware())
        self.bolt.error(guard.error_handler())

        # Plain functions, not bound methods: Bolt injects arguments by parameter name (`ack`, `body`,
        # `event`) and would try to fill a method's `self`. Each one acks, translates, hands off.
        async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
            await ack()
            command = translate.slash_command(body)
            if command is not None:
                await self._submit("command", partial(self._command, command), command.reply_to)

        async def on_action(ack: AsyncAck, body: dict[str, Any]) -> None:
            click = translate.click(body)
            if click is None:
                await ack()
                return
            if click.action in (ButtonAction.approve_comment, ButtonAction.dispute):  # dispute: asks the reason
                # Nothing is stored by opening a form: acknowledged at once, the modal follows in a job
                # (views.open must use the click's trigger_id within 3 s, so it runs right away).
                await ack()
                await self._submit("comment-form", partial(self._comment_form, click), click.reply_to)
                return
            # A click is one short database transaction, so it is stored *before* Slack hears "ok":
            # if signoff dies in between, the person sees the click fail and clicks again, instead
            # of a signature being acknowledged and lost. Only the private reply runs after the ack.
            reply = await self.chat.run(from_button(click.action, click.value), click.ctx)
            await ack()
            if reply.confirm is not None and click.trigger_id is not None:
                # `confirm = true`: nothing was signed; the form asks for the target's name (within 3 s).
                await self._submit("confirm-form", partial(self._confirm_form, click, reply), click.reply_to)
                return
            log.info("slack.click", user=click.ctx.account, action=click.action, request_id=click.value[:20],
                     ok=reply.ok)
            await self.jobs.submit("click-reply", partial(self.tell, click.reply_to, reply))

        async def on_comment(ack: AsyncAck, body: dict[str, Any]) -> None:
            submission = translate.comment_submission(body)
            if submission is None:
                await ack()
                return
            # Signed before Slack hears "ok", as a click is; a refusal is shown in the modal under the comment
            # (the person can fix it or cancel), a signature closes the modal and is confirmed privately.
            reply = await self.chat.run(from_comment(submission.request, submission.comment), submission.ctx)
            log.info("slack.comment", user=submission.ctx.account, request_id=submission.request[:20], ok=reply.ok)
            if not reply.ok:
                await ack(response_action="errors", errors={COMMENT_BLOCK_ID: clip(reply.text, VIEW_ERROR_MAX)})
                return
            await ack()
            await self.jobs.submit("comment-reply", partial(self.tell, submission.reply_to, reply))

        async def on_confirm(ack: AsyncAck, body: dict[str, Any]) -> None:
            submission = translate.confirm_submission(body)
            if submission is None:
                await ack()
                return
            channel = self._confirm_channels.get(submission.view_id or "")
            ctx = submission.ctx
            if channel is not None:
                ctx = ctx.model_copy(update={"place": Place(platform=ctx.platform, channel=channel)})
            # As a comment: signed before Slack hears "ok"; a wrong name is said under the input, the form stays.
            reply = await self.chat.run(from_confirmation(submission.request, submission.typed, submission.comment),
                                        ctx)
            log.info("slack.confirm", user=ctx.account, request_id=submission.request[:20], ok=reply.ok)
            if not reply.ok:
                await ack(response_action="errors", errors={CONFIRM_BLOCK_ID: clip(reply.text, VIEW_ERROR_MAX)})
                return
            await ack()
            self._confirm_channels.pop(submission.view_id or "", None)  # closed: a wrong name keeps it open
            if channel is not None:
                await self.jobs.submit("confirm-reply",
                                       partial(self.tell, Responder(user=ctx.account, channel=channel), reply))

        async def on_message(ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
            await ack()
            message = translate.thread_message(event, self.bot_user_id, _team(body))
            if message is not None:
                await self.jobs.submit("thread", partial(self._thread, message))

        async def on_reaction(ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
            await ack()
            vote = translate.reaction_vote(event, self.bot_user_id, _team(body))
            if vote is not None:
                await self.jobs.submit("reaction", partial(self._reaction, vote))

        async def ack_only(ack: AsyncAck) -> None:
            await ack()

        bolt = self.bolt
        bolt.command(_EVERYTHING)(on_command)
        bolt.action(_EVERYTHING)(on_action)
        bolt.event("message")(on_message)
        bolt.event("reaction_added")(on_reaction)
        bolt.view(COMMENT_CALLBACK_ID)(on_comment)
        bolt.view(CONFIRM_CALLBACK_ID)(on_confirm)
        bolt.view(DISPUTE_CALLBACK_ID)(dispute_listener(self.chat, self.jobs, self.tell))
        # Catch-alls, last: Bolt answers 404 to an unhandled HTTP request (Slack then retries it) and
        # never acks an unhandled Socket Mode envelope. Whatever arrives is acknowledged.
        bolt.event(_EVERYTHING)(ack_only)
        bolt.shortcut(_EVERYTHING)(ack_only)
        bolt.view(_EVERYTHING)(ack_only)
        bolt.options(_EVERYTHING)(ack_only)

    async def _submit(self, name: str, work: Callable[[], Awaitable[None]], to: Responder) -> None:
        """Work after the ack: a job that does not finish is told to the person who acted."""
        await self.jobs.submit(name, work, partial(self._tell_failure, to))

    # ------------------------------------------------------------------ jobs (after the ack)

    async def _command(self, command: SlashCommand) -> None:
        reply = await self.chat.handle(command.text, command.ctx)
        word = command.text.strip().split(maxsplit=1)[0].lower()[:20] if command.text.strip() else "help"
        log.info("slack.command", user=command.ctx.account, command=word, ok=reply.ok, request_id=reply.request_id)
        await self.tell(command.reply_to, reply)

    async def _comment_form(self, click: Click) -> None:
        """"Approve with comment…": the modal when this person may sign, else the refusal, privately."""
        reply = await self.chat.run(from_button(click.action, click.value), click.ctx)
        if not reply.ok or reply.request_id is None or click.trigger_id is None:
            await self.tell(click.reply_to, reply)
            return
        try:
            form = dispute_view if click.action == ButtonAction.dispute else comment_view
            await self.client.views_open(trigger_id=click.trigger_id,
                                         view=form(reply.request_id, click.reply_to.channel))
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning("slack.comment_form_failed", user=click.ctx.account, request_id=reply.request_id, error=error)
            await self.tell(click.reply_to, Reply(text=comment_form_failed_text(reply.request_id), ok=False))
            return
        log.info("slack.comment_form", user=click.ctx.account, request_id=reply.request_id)

    async def _confirm_form(self, click: Click, reply: Reply) -> None:
        """Approve… on a `confirm = true` request: the form that asks for the target's name."""
        assert click.trigger_id is not None and reply.request_id is not None and reply.confirm is not None
        try:
            opened = await self.client.views_open(trigger_id=click.trigger_id,
                                                  view=confirm_view(reply.request_id, reply.confirm))
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning("slack.confirm_form_failed", user=click.ctx.account, request_id=reply.request_id, error=error)
            await self.tell(click.reply_to, reply)  # says what to type, and the command that takes it
            return
        view_id = (opened.get("view") or {}).get("id")
        if isinstance(view_id, str) and click.reply_to.channel is not None:
            self._confirm_channels[view_id] = click.reply_to.channel
            while len(self._confirm_channels) > MAX_OPEN_FORMS:
                self._confirm_channels.popitem(last=False)
        log.info("slack.confirm_form", user=click.ctx.account, request_id=reply.request_id)

    async def _thread(self, message: ThreadMessage) -> None:
        answered = await self.chat.thread_reply(message.thread_ts, message.text, message.ctx)
        if answered:
            log.info("slack.thread_answered", user=message.ctx.account, thread_ts=message.thread_ts)

    async def _reaction(self, vote: ReactionVote) -> None:
        reply = await self.chat.reaction(vote.message_ts, vote.reaction, vote.ctx)
        if reply is not None:
            log.info("slack.reaction_vote", user=vote.ctx.account, reaction=vote.reaction, ok=reply.ok)
            await self.tell(vote.reply_to, reply)

    async def _tell_failure(self, to: Responder, reason: str) -> None:
        await self.tell(to, Reply(text=UNFINISHED_TEXT.get(reason, UNFINISHED_TEXT["crashed"]), ok=False))

    async def tell(self, to: Responder, reply: Reply) -> None:
        """The core's answer to the person who acted: privately unless the reply says otherwise (replies.py)."""
        await self.replies.tell(to, reply)


__all__ = ["EVENTS_PATH", "SlackAdapter", "SlackConfig"]


def _team(body: dict[str, Any]) -> str | None:
    """The workspace an Events API envelope came from."""
    team = body.get("team_id")
    return team if isinstance(team, str) and team else None
