"""The Slack side of the outbox: the core's ChatGateway on slack_sdk's AsyncWebClient.

Failures become `DeliveryError`s the dispatcher understands: a 429 carries Slack's
`Retry-After`, 5xx answers, timeouts and dropped connections are transient, and errors no
retry can fix (`channel_not_found`, `invalid_auth`, `not_in_channel`, …) are permanent.

slack_sdk's own retry handlers absorb short blips inside one call (one retry on a dropped
connection or a 500/503, one on a 429 whose `Retry-After` is short). Longer rate limits
are handed back to the outbox at once: the SDK would otherwise sleep inside the
dispatcher's pass and hold up every other card.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.render import (
    MAX_BLOCKS,
    SECTION_TEXT_MAX,
    card_blocks,
    card_text,
    escaped,
    message_text,
    with_mentions,
)
from core.chat.cards import Card, Mentions
from core.chat.messages import DeliveryError, MessageRef

log = structlog.get_logger(__name__)

PLATFORM = "slack"
# Errors that mean a token itself is wrong: waiting will not fix them, so start-up stops.
BAD_TOKEN_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type",
    "no_permission", "missing_scope",
})
DEFAULT_TIMEOUT_S = 10

# `ok: false` errors that are worth trying again; every other error is permanent (the
# dispatcher still makes a few attempts before it gives up on a permanent one).
TRANSIENT_ERRORS = frozenset({
    "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
    "bad_gateway", "team_added_to_org", "ekm_access_denied",
})


class ShortRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Retry a 429 inside the call only when Slack asks for a short wait.

    The stock handler sleeps `int(Retry-After) + random()` whatever the value; a longer
    wait belongs to the outbox, which reschedules the message and keeps delivering others.
    """

    def __init__(self, max_retry_count: int = 1, max_wait_s: float = 2.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    async def _can_retry_async(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_seconds(response.headers)
        return wait is not None and wait <= self.max_wait_s


class NoRepostServerErrorRetryHandler(AsyncServerErrorRetryHandler):
    """Retries a 5xx at once, except a post: Slack may have stored the message before failing, and a blind
    re-post would show it twice. The outbox retries a post later, looking for it first."""

    async def _can_retry_async(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if request.url.rstrip("/").endswith("chat.postMessage"):
            return False
        retry: bool = await super()._can_retry_async(state=state, request=request, response=response, error=error)
        return retry


def retry_handlers(*, rate_limit_wait_s: float = 2.0) -> list[AsyncRetryHandler]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=1),
        NoRepostServerErrorRetryHandler(max_retry_count=1),
        ShortRateLimitRetryHandler(max_retry_count=1, max_wait_s=rate_limit_wait_s),
    ]


def build_web_client(
    token: str | None, base_url: str, *, session: aiohttp.ClientSession | None = None,
    timeout: int = DEFAULT_TIMEOUT_S, rate_limit_wait_s: float = 2.0,
) -> AsyncWebClient:
    """slack_sdk reads no base URL from the environment: SLACK_API_URL is passed here."""
    if not base_url.endswith("/"):
        base_url += "/"  # slack_sdk joins `base_url + method`
    return AsyncWebClient(
        token=token, base_url=base_url, session=session, timeout=timeout,
        retry_handlers=retry_handlers(rate_limit_wait_s=rate_limit_wait_s),
    )


def retry_after_seconds(headers: Mapping[str, Any]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None


def delivery_error(method: str, exc: BaseException) -> DeliveryError:
    """What the outbox should do about a failed Web API call."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = int(getattr(response, "status_code", 200))
        error = str(response.get("error") or f"http_{status}")
        if status == 429 or error in ("ratelimited", "rate_limited"):
            wait = retry_after_seconds(getattr(response, "headers", {}) or {})
            return DeliveryError(f"{method}: {error}", retry_after=wait if wait is not None else 1.0)
        if status >= 500 or error in TRANSIENT_ERRORS:
            return DeliveryError(f"{method}: {error} (HTTP {status})")
        return DeliveryError(f"{method}: {error}", permanent=True)
    if isinstance(exc, TimeoutError | aiohttp.ClientError | SlackClientError | OSError):
        return DeliveryError(f"{method}: {type(exc).__name__}: {exc}")
    return DeliveryError(f"{method}: unexpected {type(exc).__name__}: {exc}")


# Message metadata (`chat.postMessage` `metadata`) that lets signoff find its own posts again.
CARD_EVENT = "signoff_card"
MESSAGE_EVENT = "signoff_message"
LOOKUP_LIMIT = 100


def _metadata(event_type: str, request_id: str | None, token: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if request_id is not None:
        payload["request_id"] = request_id
    if token is not None:
        payload["token"] = token
    return {"event_type": event_type, "event_payload": payload}


class SlackGateway:
    """Posts and updates cards and thread replies. A card's own `ts` is its thread root."""

    platform = PLATFORM

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def _call(self, method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            return await self.client.api_call(method, json=kwargs)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = delivery_error(method, exc)
            # The outbox logs the retry it schedules; a permanent error deserves a warning of its own.
            report = log.warning if error.permanent else log.info
            report("slack.api_failed", method=method, error=str(error), permanent=error.permanent,
                   retry_after=error.retry_after)
            raise error from exc

    @staticmethod
    def _ref(response: AsyncSlackResponse, channel: str, thread: str | None = None) -> MessageRef:
        ts = str(response["ts"])
        return MessageRef(platform=PLATFORM, channel=str(response.get("channel") or channel), message_id=ts,
                          thread=thread or ts)

    async def post_card(self, channel: str, card: Card, *, token: str | None = None,
                        retry: bool = False) -> MessageRef:
        metadata = _metadata(CARD_EVENT, card.key, token)
        if retry:
            found = await self._find(channel, None, lambda payload: payload.get("request_id") == card.key,
                                     CARD_EVENT)
            if found is not None:
                log.info("slack.found_earlier_post", key=card.key, channel=channel, ts=found)
                return MessageRef(platform=PLATFORM, channel=channel, message_id=found, thread=found)
        response = await self._call("chat.postMessage", channel=channel, text=card_text(card),
                                    blocks=card_blocks(card), unfurl_links=False, unfurl_media=False,
                                    metadata=metadata)
        return self._ref(response, channel)

    async def update_card(self, ref: MessageRef, card: Card) -> None:
        # chat.update without `blocks` keeps the old ones (and their buttons): always send the full card.
        await self._call("chat.update", channel=ref.channel, ts=ref.message_id, text=card_text(card),
                         blocks=card_blocks(card))

    async def post_reply(
        self, ref: MessageRef, text: str, card: Card | None = None, *, mentions: Mentions | None = None,
        token: str | None = None, retry: bool = False,
    ) -> MessageRef:
        thread = ref.thread or ref.message_id
        if retry and token is not None:
            found = await self._find(ref.channel, thread, lambda payload: payload.get("token") == token)
            if found is not None:
                log.info("slack.found_earlier_post", token=token, channel=ref.channel, ts=found)
                return MessageRef(platform=PLATFORM, channel=ref.channel, message_id=found, thread=thread)
        response = await self._call("chat.postMessage", channel=ref.channel, thread_ts=thread,
                                    metadata=_metadata(MESSAGE_EVENT, None, token), **self._body(text, card, mentions))
        return self._ref(response, ref.channel, thread)

    async def post_message(
        self, channel: str, text: str, card: Card | None = None, *, mentions: Mentions | None = None,
        token: str | None = None, retry: bool = False,
    ) -> MessageRef:
        if retry and token is not None:
            found = await self._find(channel, None, lambda payload: payload.get("token") == token)
            if found is not None:
                log.info("slack.found_earlier_post", token=token, channel=channel, ts=found)
                return MessageRef(platform=PLATFORM, channel=channel, message_id=found)
        response = await self._call("chat.postMessage", channel=channel, metadata=_metadata(MESSAGE_EVENT, None, token),
                                    **self._body(text, card, mentions))
        return self._ref(response, channel)

    async def post_direct(self, user: str, text: str, card: MessageRef) -> MessageRef:
        """conversations.open for the IM channel (scope im:write), then the message with the card's permalink."""
        link = await self._call("chat.getPermalink", channel=card.channel, message_ts=card.message_id)
        opened = await self._call("conversations.open", users=user)
        channel = str(opened["channel"]["id"])
        body = f"{message_text(text)} <{link['permalink']}|{card.channel}/{card.message_id}>"
        response = await self._call("chat.postMessage", channel=channel, text=body, unfurl_links=False,
                                    unfurl_media=False)
        return self._ref(response, channel)

    async def _find(self, channel: str, thread: str | None, matches: Callable[[dict[str, Any]], bool],
                    event_type: str | None = None) -> str | None:
        """The ts of a recent message of ours whose metadata `matches`: the earlier attempt that Slack stored
        although its answer was an error. Looked up in the thread, or among the channel's latest messages."""
        if thread is not None:
            response = await self._call("conversations.replies", channel=channel, ts=thread,
                                        include_all_metadata=True, limit=LOOKUP_LIMIT)
        else:
            response = await self._call("conversations.history", channel=channel, include_all_metadata=True,
                                        limit=LOOKUP_LIMIT)
        for message in response.get("messages") or []:
            metadata = message.get("metadata") if isinstance(message, dict) else None
            if not isinstance(metadata, dict):
                continue
            if event_type is not None and metadata.get("event_type") != event_type:
                continue
            payload = metadata.get("event_payload")
            if isinstance(payload, dict) and matches(payload) and isinstance(message.get("ts"), str):
                return str(message["ts"])
        return None

    @staticmethod
    def _body(text: str, card: Card | None, mentions: Mentions | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": with_mentions(text, mentions), "unfurl_links": False,
                                "unfurl_media": False}
        if card is not None:
            blocks = card_blocks(card)
            if text and text.strip() != card.title.strip():  # the header already says it otherwise
                note = {"type": "section", "block_id": "signoff_note",
                        "text": {"type": "mrkdwn", "text": escaped(text, SECTION_TEXT_MAX)}}
                blocks = [note, *blocks][:MAX_BLOCKS]
            body["blocks"] = blocks
            if not text:
                body["text"] = card_text(card)
        return body
