"""`signoff run`: the long-running service."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket

import structlog

from bot.bootstrap import bootstrap
from bot.http import HttpServer, build_http_app
from bot.reload import PolicyReloader
from bot.settings import Settings
from core.errors import SignoffError

log = structlog.get_logger(__name__)


async def run_service(
    settings: Settings, stop: asyncio.Event | None = None, *, listener: socket.socket | None = None,
) -> int:
    """The service until `stop` is set (SIGINT/SIGTERM). `listener` is the HTTP port bound early by the CLI
    (bot/listen.py); it is served once everything is up, so /healthz says 200 only then, and it is closed
    whatever happens."""
    try:
        return await _run(settings, stop or asyncio.Event(), listener)
    finally:
        if listener is not None:
            listener.close()  # a no-op once the HTTP server has closed it


async def _run(settings: Settings, stop: asyncio.Event, listener: socket.socket | None) -> int:
    missing = settings.missing_for_run()
    if missing:
        raise SignoffError(missing)
    problem = settings.slack_problem()
    if problem:
        raise SignoffError(problem)
    install_stop_signals(stop)
    async with bootstrap(settings) as app:
        install_reload_signal(app.reloader)
        await app.maintenance.recover(sole_worker=app.db.sole_worker)
        http = build_http_app(app)
        server = HttpServer(http, settings.http_host, settings.listen_port, sock=listener)
        # Chat adapters start before the workers and stop after them: receiving stops first (HTTP
        # server, then the Slack socket), their jobs in flight finish, then the database closes.
        async with contextlib.AsyncExitStack() as chats:
            # A chat's SDK is imported only when that chat is configured (start-up time).
            if settings.slack_enabled:
                from bot.chats.slack import attach_slack

                # HTTP mode mounts POST /slack/events on `http`; Socket Mode connects in running().
                await chats.enter_async_context(attach_slack(app, http).running())
            if settings.discord_enabled:
                from bot.chats.discord import start_discord

                await chats.enter_async_context(start_discord(app, settings))
            async with app.background():
                await server.start()
                log.info("service.started", port=server.port, slack=settings.slack_enabled,
                         discord=settings.discord_enabled, api=settings.api_token is not None)
                # What start-up did not wait for is done now, before the first request would need it.
                warming = asyncio.create_task(app.warm_up())
                try:
                    await stop.wait()
                finally:
                    warming.cancel()
                    await server.stop()
        log.info("service.stopped")
    return 0


def install_reload_signal(reloader: PolicyReloader | None) -> None:
    """SIGHUP re-reads the policy file (the reloader's supervised loop does the work)."""
    if reloader is None:
        return
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.ask)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
