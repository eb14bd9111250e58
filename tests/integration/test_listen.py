"""`signoff run` binds its HTTP port first (bot/listen.py): a request that arrives while the service is
starting waits and is answered once it is up, instead of being refused."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from bot.http import HttpServer
from bot.listen import bind_listener
from core.errors import SignoffError


async def test_a_request_sent_before_the_server_starts_is_answered_once_it_does() -> None:
    listener = bind_listener("127.0.0.1", 0)
    assert listener is not None
    port = listener.getsockname()[1]
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    http = web.Application()
    http.router.add_get("/healthz", healthz)
    server = HttpServer(http, "127.0.0.1", port, sock=listener)
    async with aiohttp.ClientSession() as session:
        early = asyncio.create_task(session.get(f"http://127.0.0.1:{port}/healthz"))
        await asyncio.sleep(0.2)  # the connection waits in the backlog: nothing serves it yet
        assert not early.done()
        await server.start()
        try:
            assert server.port == port
            async with await early as response:
                assert response.status == 200
        finally:
            await server.stop()
    assert listener.fileno() == -1  # the server owned it and closed it


def test_a_busy_port_is_left_for_the_server_to_bind_when_ready() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert bind_listener("127.0.0.1", taken.getsockname()[1]) is None


def test_a_host_that_cannot_be_resolved_is_one_sentence() -> None:
    with pytest.raises(SignoffError, match="SIGNOFF_HTTP_HOST"):
        bind_listener("no-such-host.invalid", 0)
