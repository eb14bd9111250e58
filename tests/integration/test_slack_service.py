"""`signoff run` (run_service) starts Slack in both modes, serves it, and stops cleanly."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator

import aiohttp
import pytest

from bot.service import run_service
from core.errors import SignoffError
from testkit.fakes.slack import FakeSlack, post_signed, slash_command_body, slash_command_payload
from testkit.support import make_settings
from testkit.support.slack import ALICE, CHANNEL, SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _restore_signal_handlers() -> Iterator[None]:
    # run_service installs SIGINT/SIGTERM handlers on the test's loop; put the previous ones back.
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in before.items():
        signal.signal(sig, handler)


async def _wait_private_answer(fake: FakeSlack, user: str) -> str:
    for _ in range(500):
        answers = fake.ephemerals_for(user)
        if answers:
            return str(answers[0]["text"])
        await asyncio.sleep(0.01)
    raise AssertionError("no private answer")


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_run_service_serves_slack(sqlite_database_url: str, mode: str) -> None:
    async with FakeSlack() as fake:
        port = free_port()
        env = {"SLACK_BOT_TOKEN": fake.bot_token, "SLACK_API_URL": fake.api_url, "SLACK_CHANNEL": CHANNEL,
               "SIGNOFF_HTTP_HOST": "127.0.0.1", "SIGNOFF_HTTP_PORT": str(port)}
        env["SLACK_APP_TOKEN" if mode == "socket" else "SLACK_SIGNING_SECRET"] = \
            fake.app_token if mode == "socket" else SECRET
        stop = asyncio.Event()
        service = asyncio.create_task(run_service(make_settings(sqlite_database_url, **env), stop))
        try:
            response_url = fake.new_response_url(CHANNEL, user_id=ALICE)
            if mode == "socket":
                await fake.wait_socket_connected(timeout=20)
                envelope = await fake.socket_send("slash_commands",
                                                  slash_command_payload("help", ALICE, CHANNEL, response_url))
                await fake.wait_ack(envelope)
            else:
                await fake.wait_for("auth.test", timeout=20)
                status = 0
                async with aiohttp.ClientSession() as session:
                    for _ in range(200):  # the port opens once start-up is done
                        try:
                            status, _ = await post_signed(f"http://127.0.0.1:{port}/slack/events",
                                                          slash_command_body("help", ALICE, CHANNEL, response_url),
                                                          SECRET, session=session)
                            break
                        except aiohttp.ClientConnectionError:
                            await asyncio.sleep(0.05)
                assert status == 200
            assert "Commands:" in await _wait_private_answer(fake, ALICE)
        finally:
            stop.set()
            assert await asyncio.wait_for(service, 20) == 0


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_a_wrong_token_stops_start_up_with_a_clear_message(sqlite_database_url: str, mode: str) -> None:
    async with FakeSlack() as fake:
        env = {"SLACK_BOT_TOKEN": "xoxb-wrong" if mode == "http" else fake.bot_token,
               "SLACK_API_URL": fake.api_url, "SIGNOFF_HTTP_HOST": "127.0.0.1", "SIGNOFF_HTTP_PORT": str(free_port())}
        if mode == "socket":
            env["SLACK_APP_TOKEN"] = "xapp-wrong"
        else:
            env["SLACK_SIGNING_SECRET"] = SECRET
        token = "SLACK_APP_TOKEN" if mode == "socket" else "SLACK_BOT_TOKEN"
        with pytest.raises(SignoffError, match=f"Slack refused {token} \\(invalid_auth\\)"):
            await asyncio.wait_for(run_service(make_settings(sqlite_database_url, **env)), 20)
