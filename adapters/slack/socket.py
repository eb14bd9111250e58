"""Slack Socket Mode for the duration of a block: the app-level token checked once (a wrong one stops
start-up with what to do), then the websocket, which slack_sdk keeps connected on its own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import structlog
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.gateway import BAD_TOKEN_ERRORS
from core.errors import SignoffError

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def socket_mode(bolt: AsyncApp, client: AsyncWebClient, app_token: str) -> AsyncIterator[None]:
    await _check(client, app_token)
    # Imported here: HTTP mode (no app token) never loads the Socket Mode client (start-up time).
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    # Built here, inside the running loop: its client opens a session and starts a task in __init__.
    handler = AsyncSocketModeHandler(bolt, app_token=app_token, web_client=client)
    # connect_async() retries on its own until it is connected. Kept and cancelled/awaited on the
    # way out rather than awaited here, so an unreachable Slack delays Slack and nothing else.
    connector = asyncio.create_task(_connect(handler), name="slack.socket_connect")
    try:
        yield
    finally:
        connector.cancel()
        await asyncio.gather(connector, return_exceptions=True)
        try:
            await handler.close_async()  # type: ignore[no-untyped-call]
        except Exception:
            log.exception("slack.socket_close_failed")


async def _check(client: AsyncWebClient, app_token: str) -> None:
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "")
        if error in BAD_TOKEN_ERRORS:
            raise SignoffError(
                f"Slack refused SLACK_APP_TOKEN ({error}). Create an app-level token (xapp-…) with the "
                "connections:write scope under Basic Information → App-Level Tokens, and enable Socket Mode."
            ) from None
        log.warning("slack.socket_check_failed", error=error)
    except (aiohttp.ClientError, SlackClientError, TimeoutError, OSError) as exc:
        log.warning("slack.socket_check_failed", error=type(exc).__name__)


async def _connect(handler: object) -> None:
    try:
        await handler.connect_async()  # type: ignore[attr-defined]
    except Exception:
        # slack_sdk retries every failure itself, so this is a bug there; say so at once, not at shutdown.
        log.exception("slack.socket_connect_failed")
        raise
    log.info("slack.socket_connected")
