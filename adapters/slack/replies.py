"""Private answers to the person who acted on Slack: the payload's response_url first, chat.postEphemeral
(or chat.postMessage for a public reply) when it fails or there is none. Best effort: what the person did is
already stored, and the card (through the outbox) shows it."""

from __future__ import annotations

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.gateway import retry_handlers
from adapters.slack.render import message_text
from adapters.slack.translate import Responder
from core.chat.commands import Reply

log = structlog.get_logger(__name__)


class Replies:
    def __init__(self, client: AsyncWebClient, timeout_s: int) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.session: aiohttp.ClientSession | None = None

    async def tell(self, to: Responder, reply: Reply) -> None:
        """The core's answer to the person who acted: privately unless the reply says otherwise.

        The response_url first (valid for 30 minutes, and the only way to answer in a DM or a
        channel the bot is not in), chat.postEphemeral when it fails or there is none. Best
        effort: what the person did is already stored, and the card (through the outbox) shows it.
        """
        text = message_text(reply.text)
        if to.response_url and await self._respond(to.response_url, text, reply.private):
            return
        if to.channel is None:
            log.warning("slack.private_reply_lost", user=to.user, reason="no channel")
            return
        try:
            if reply.private:
                await self.client.chat_postEphemeral(channel=to.channel, user=to.user, text=text,
                                                     thread_ts=to.thread_ts)
            else:
                await self.client.chat_postMessage(channel=to.channel, text=text, thread_ts=to.thread_ts)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning("slack.private_reply_failed", user=to.user, channel=to.channel, error=error)

    async def _respond(self, url: str, text: str, private: bool) -> bool:
        webhook = AsyncWebhookClient(url, timeout=self.timeout_s, session=self.session,
                                     retry_handlers=retry_handlers())
        try:
            response = await webhook.send_dict({
                "text": text,
                "response_type": "ephemeral" if private else "in_channel",
                "replace_original": False,  # never overwrite the card the person clicked on
            })
        except (aiohttp.ClientError, SlackClientError, TimeoutError, OSError) as exc:
            log.warning("slack.respond_failed", error=type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("slack.respond_failed", status=response.status_code, error=str(response.body)[:100])
            return False
        return True

