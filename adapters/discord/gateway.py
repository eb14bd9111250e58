"""The Discord side of the outbox: the core's ChatGateway on discord.py's REST client.

Failures become `DeliveryError`s the dispatcher understands: a 429 discord.py did not absorb
carries its retry delay; 5xx answers, timeouts and dropped connections are transient; errors
no retry can fix (403 Missing Access, 404 Unknown Channel, 400 Invalid Form Body) are permanent.

The outbox delivers at least once, so every post must be safe to repeat:

* Each post carries a `nonce` with `enforce_nonce`: Discord then answers a repeated post
  (discord.py's own retry after a 5xx that had in fact landed, or the outbox's next attempt)
  with the message it already created, for a few minutes. A card's nonce is derived from the
  channel, the request id and its operation, so it holds across a restart too; a reply's nonce
  is random but kept until that reply is delivered, so all attempts of one delivery share it
  while a later, identical reply (`status` asked twice) still gets posted.
* `post_card` remembers each card's message id (per channel and request, for the process
  lifetime, bounded): when the card was posted but opening its thread failed, the retry only
  opens the thread, even after the nonce window. Opening the thread is idempotent as well:
  Discord refuses a second thread on a message (160004), and a thread's id is its starter
  message's id.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import aiohttp
import discord
import structlog

from adapters.discord.render import allowed_mentions, card_embed, card_view, mention_text, message_pieces, thread_name
from adapters.discord.translate import PLATFORM
from core.chat.cards import Card, Mentions
from core.chat.messages import DeliveryError, MessageRef

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEFAULT_REQUEST_TIMEOUT_S = 20.0
# A week: results, ratings and playbook offers arrive well after the card.
THREAD_ARCHIVE_MINUTES: Literal[10080] = 10080
THREAD_ALREADY_CREATED = 160004
CANNOT_ON_CHANNEL_TYPE = 50024  # e.g. a card posted inside a thread cannot open a thread of its own
REMEMBERED_CARDS = 10_000
REMEMBERED_DELIVERIES = 10_000


def retry_after_of(exc: discord.HTTPException) -> float | None:
    response: Any = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def delivery_error(call: str, exc: BaseException) -> DeliveryError:
    """What the outbox should do about a failed REST call."""
    if isinstance(exc, discord.RateLimited):  # longer than the client's max_ratelimit_timeout
        return DeliveryError(f"{call}: rate limited", retry_after=exc.retry_after)
    if isinstance(exc, discord.HTTPException):
        status, code = exc.status, exc.code
        detail = f"{call}: HTTP {status} (code {code}) {exc.text[:120]}".rstrip()
        if status == 429:  # discord.py gives up on a 429 without a Via header (a Cloudflare ban)
            wait = retry_after_of(exc)
            return DeliveryError(detail, retry_after=wait if wait is not None else 5.0)
        if status >= 500 or status in (401, 408):
            # 401: a revoked or rotated token; transient so nothing is dropped while an operator fixes it.
            return DeliveryError(detail)
        return DeliveryError(detail, permanent=True)
    if isinstance(exc, TimeoutError | aiohttp.ClientError | OSError):
        return DeliveryError(f"{call}: {type(exc).__name__}: {exc}")
    return DeliveryError(f"{call}: unexpected {type(exc).__name__}: {exc}")


def card_nonce(channel: str, card: Card) -> str:
    """Stable for one request's card in one channel (24 hex characters; Discord allows 25)."""
    seed = f"card\0{channel}\0{card.key}\0{thread_name(card)}"
    return hashlib.sha256(seed.encode()).hexdigest()[:24]


class DiscordGateway:
    """Posts and edits cards, opens their threads, and replies there."""

    platform = PLATFORM

    def __init__(self, client: discord.Client, *, request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self._client = client
        self._timeout = request_timeout
        self._cards: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._pending: OrderedDict[str, str] = OrderedDict()  # delivery → nonce prefix, until delivered

    # ------------------------------------------------------------------ ChatGateway

    # `token`/`retry` are not needed here: every post carries a nonce, which Discord deduplicates.
    async def post_card(self, channel: str, card: Card, *, token: str | None = None,
                        retry: bool = False) -> MessageRef:
        messageable = self._messageable(channel)
        slot = (channel, card.key)
        message_id = self._cards.get(slot)
        if message_id is None:
            embed, view = card_embed(card), card_view(card)
            nonce = card_nonce(channel, card)
            # The first post pages who can sign: the content names them and allowed_mentions lets exactly them
            # be pinged (an embed never pings).
            extra: dict[str, Any] = {"allowed_mentions": allowed_mentions(card.mentions)}
            paged = mention_text(card.mentions)
            if paged:
                extra["content"] = f"Can sign: {paged}"
            if view is not None:
                extra["view"] = view
            message = await self._rest("post_card", lambda: messageable.send(embed=embed, nonce=nonce, **extra))
            message_id = message.id
            self._remember(slot, message_id)
        try:
            thread = await self._rest("open_thread",
                                      lambda: self._open_thread(channel, message_id, thread_name(card)))
        except DeliveryError as exc:
            if isinstance(exc.__cause__, discord.NotFound):
                # The card was deleted before its thread opened: post it again on the next attempt.
                self._cards.pop(slot, None)
                raise DeliveryError(str(exc)) from exc.__cause__
            raise
        log.info("discord.card_posted", key=card.key, channel=channel, message_id=message_id, thread=thread)
        return MessageRef(platform=PLATFORM, channel=channel, message_id=str(message_id), thread=thread)

    async def update_card(self, ref: MessageRef, card: Card) -> None:
        message = self._messageable(ref.channel).get_partial_message(int(ref.message_id))
        embed, view = card_embed(card), card_view(card)
        # view=None removes every component: terminal cards keep no buttons.
        await self._rest("update_card", lambda: message.edit(embed=embed, view=view))

    async def post_reply(
        self, ref: MessageRef, text: str, card: Card | None = None, *, mentions: Mentions | None = None,
        token: str | None = None, retry: bool = False,
    ) -> MessageRef:
        target = ref.thread or ref.channel
        message = await self._send("post_reply", target, text, card, mentions)
        return MessageRef(platform=PLATFORM, channel=target, message_id=str(message.id), thread=ref.thread)

    async def post_message(
        self, channel: str, text: str, card: Card | None = None, *, mentions: Mentions | None = None,
        token: str | None = None, retry: bool = False,
    ) -> MessageRef:
        message = await self._send("post_message", channel, text, card, mentions)
        return MessageRef(platform=PLATFORM, channel=channel, message_id=str(message.id))

    async def post_direct(self, user: str, text: str, card: MessageRef) -> MessageRef:
        """Opens (or finds) the DM channel with the user and sends the text with the card's jump URL."""
        http = self._client.http
        dm = await self._rest("open_dm", lambda: http.start_private_message(int(user)))
        channel = await self._rest("get_channel", lambda: http.get_channel(int(card.channel)))
        guild = channel.get("guild_id") or "@me"
        jump = f"https://discord.com/channels/{guild}/{card.channel}/{card.message_id}"
        message = await self._send("post_direct", str(dm["id"]), f"{text} {jump}", None)
        return MessageRef(platform=PLATFORM, channel=str(dm["id"]), message_id=str(message.id))

    # ------------------------------------------------------------------ internals

    def _messageable(self, channel: str) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(int(channel))

    def _remember(self, slot: tuple[str, str], message_id: int) -> None:
        self._cards[slot] = message_id
        self._cards.move_to_end(slot)
        while len(self._cards) > REMEMBERED_CARDS:
            self._cards.popitem(last=False)

    async def _open_thread(self, channel: str, message_id: int, name: str) -> str:
        try:
            data = await self._client.http.start_thread_with_message(
                int(channel), message_id, name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES,
            )
        except discord.HTTPException as exc:
            if exc.code == THREAD_ALREADY_CREATED:
                return str(message_id)  # an earlier attempt opened it; a thread's id is its message's
            if exc.code == CANNOT_ON_CHANNEL_TYPE or isinstance(exc, discord.Forbidden):
                # Replies then go beside the card rather than nowhere: the loop keeps working.
                log.error("discord.thread_unavailable", channel=channel, message_id=message_id, status=exc.status,
                          code=exc.code, hint="give the bot Create Public Threads and Send Messages in Threads")
                return channel
            raise
        return str(data["id"])

    async def _send(
        self, call: str, channel: str, text: str, card: Card | None, mentions: Mentions | None = None,
    ) -> discord.Message:
        messageable = self._messageable(channel)
        pings = allowed_mentions(mentions)
        pieces = message_pieces(text) if text else []
        paged = mention_text(mentions)
        if paged:
            # The mentions are signoff's own markup: added after the text is neutralised, never escaped.
            pieces = [f"{paged} {pieces[0]}".strip(), *pieces[1:]] if pieces else [paged]
        embed = card_embed(card) if card is not None else None
        view = card_view(card) if card is not None else None
        if not pieces and embed is None:
            pieces = ["\u200b"]  # Discord refuses an empty message; the core never sends one
        delivery = hashlib.sha256(
            f"{channel}\0{text}\0{card.model_dump_json() if card else ''}".encode()
        ).hexdigest()
        prefix = self._pending.setdefault(delivery, secrets.token_hex(10))
        while len(self._pending) > REMEMBERED_DELIVERIES:  # deliveries the outbox gave up on
            self._pending.popitem(last=False)
        message: discord.Message | None = None
        count = max(len(pieces), 1)
        for index in range(count):
            piece = pieces[index] if index < len(pieces) else None
            nonce = f"{prefix}{index:02d}"
            last = index == count - 1
            message = await self._rest(call, self._sender(messageable, piece, embed if last else None,
                                                          view if last else None, nonce, pings))
        self._pending.pop(delivery, None)
        assert message is not None
        return message

    @staticmethod
    def _sender(
        messageable: discord.PartialMessageable, content: str | None, embed: discord.Embed | None,
        view: discord.ui.View | None, nonce: str, pings: discord.AllowedMentions,
    ) -> Callable[[], Awaitable[discord.Message]]:
        extra: dict[str, Any] = {"allowed_mentions": pings}  # the rest are left out, not None, when absent
        if embed is not None:
            extra["embed"] = embed
        if view is not None:
            extra["view"] = view

        def send() -> Awaitable[discord.Message]:
            return messageable.send(content, nonce=nonce, **extra)
        return send

    async def _rest(self, call: str, operation: Callable[[], Awaitable[T]]) -> T:
        if self._client.is_closed():
            raise DeliveryError(f"{call}: the Discord client is not running")
        try:
            # discord.py has no request timeout of its own: a hanging Discord would stall every
            # platform's deliveries, since the dispatcher delivers one message at a time.
            async with asyncio.timeout(self._timeout):
                return await operation()
        except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            error = delivery_error(call, exc)
            log.warning("discord.rest_failed", call=call, error=str(error), permanent=error.permanent,
                        retry_after=error.retry_after)
            raise error from exc
