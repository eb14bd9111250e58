"""Two `signoff run` processes on one PostgreSQL, both with DISCORD_BOT_TOKEN, against the fake Discord:
exactly one holds the gateway session (the Discord lease), the other never IDENTIFYs; when the holder is
SIGKILLed the other takes over; a thread reply and a reaction are answered exactly once throughout.

Why: every gateway session of a bot receives every event, so two connected replicas would each answer a
thread reply or a reaction (issue 10, item 16).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.db.database import Database
from bot.chats.discord import DISCORD_LEASE
from testkit.fakes.discord import FakeDiscord
from testkit.harness import API_TOKEN, Deployment, SignoffProcess, deployment
from testkit.postgres import postgres_database

pytestmark = pytest.mark.postgres

BOB = "222222222222222222"
CAROL = "333333333333333333"
POLICY = f"""
[people.assistant]
groups = ["bots"]
[people.bob]
slack = "U0BOB"
discord = "{BOB}"
groups = ["sre"]
[people.carol]
slack = "U0CAROL"
discord = "{CAROL}"
groups = ["sre"]

[risk.medium]
quorum = 2
approvers = ["sre"]
[risk.high]
quorum = 2
approvers = ["sre"]

[playbooks]
quorum = 1
approvers = ["sre"]
"""
# Generous: what is checked is that the takeover happens, not how fast this machine is. The design
# figure (lease TTL 10 s + poll 1 s + connecting) is documented in docs/deployment.md.
TAKEOVER_TIMEOUT = 60.0


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord.running_in_thread() as server:
        server.add_member(BOB, "bob")
        server.add_member(CAROL, "carol")
        yield server


async def wait_until(what: Callable[[], Any], timeout: float = 30.0, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message}")


async def lease_holder(world: Deployment) -> SignoffProcess | None:
    db = Database(world.database_url)
    try:
        owner = await db.read(lambda uow: uow.leases.holder(DISCORD_LEASE, datetime.now(UTC)))
    finally:
        await db.dispose()
    if owner is None:
        return None
    pid = int(owner.split("/")[1])  # hostname/pid/nonce
    return next((r for r in world.replicas if r.process is not None and r.process.pid == pid), None)


def thread_texts(fake: FakeDiscord, thread: str) -> list[str]:
    return [str(m["content"]) for m in fake.thread_messages(thread)]


def card_of(fake: FakeDiscord, request_id: str) -> dict[str, Any] | None:
    for message in fake.messages(fake.channel_id):
        if any(f" {request_id} " in f" {e.get('title', '')} " for e in message.get("embeds", [])):
            return message
    return None


async def ask_in_thread(fake: FakeDiscord, thread: str, user: str, word: str, answer: str) -> None:
    """Post `word` in the thread and wait for a new message containing `answer`."""
    before = sum(1 for t in thread_texts(fake, thread) if answer in t)
    await fake.post_user_message(user, thread, word)
    await wait_until(lambda: sum(1 for t in thread_texts(fake, thread) if answer in t) > before,
                     message=f"the answer to {word!r}")


def log_events(replica: SignoffProcess, event: str) -> list[dict[str, Any]]:
    found = []
    for line in replica.log_text().splitlines():
        if f'"event": "{event}"' in line:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


async def test_one_replica_holds_the_discord_session_and_the_other_takes_over(
    tmp_path: Path, postgres_url: str, fake: FakeDiscord,
) -> None:
    env = {"DISCORD_BOT_TOKEN": fake.token, "DISCORD_API_URL": fake.api_url, "DISCORD_GATEWAY_URL": fake.gateway_url,
           "DISCORD_CHANNEL_ID": fake.channel_id, "DISCORD_GUILD_ID": fake.guild_id}
    with deployment(tmp_path, postgres_url, replicas=2, deployments=2, extra_env=env) as world:
        (tmp_path / "signoff.toml").write_text(POLICY)
        await world.start()
        await wait_until(lambda: fake.ready_count >= 1, 30, "a gateway session")
        leader = await lease_holder(world)
        assert leader is not None
        follower = next(r for r in world.replicas if r is not leader)
        # The follower polls the lease every second; it must never connect meanwhile.
        await asyncio.sleep(3)
        assert len(fake.identifies) == 1 and fake.connected_sessions == 1
        assert log_events(follower, "discord.following") and not log_events(follower, "discord.leading")

        async with aiohttp.ClientSession() as session:
            # A request made through the follower's API: its Discord card is delivered by the leader.
            body = {"action": "rollout restart deployment/app-0000 -n crash", "requested_by": "assistant",
                    "risk": "high", "reason": "replica test", "incident_id": "INC-1"}
            async with session.post(follower.base + "/api/v1/requests", json=body,
                                    headers={"Authorization": f"Bearer {API_TOKEN}"}) as response:
                assert response.status == 201, await response.text()
                request_id = str((await response.json())["id"])
        card = await wait_until(lambda: (c := card_of(fake, request_id)) and str(c["id"]) in fake.threads and c,
                                message="the Discord card and its thread")
        thread = fake.threads[str(card["id"])]

        await ask_in_thread(fake, thread, BOB, "timeline", f"Timeline of {request_id}")

        # The leader dies without a word; its lease lapses and the follower takes over.
        killed_at = time.monotonic()
        leader.kill()
        await wait_until(lambda: len(fake.identifies) >= 2 and fake.connected_sessions >= 1, TAKEOVER_TIMEOUT,
                         "the takeover")
        await wait_until(lambda: log_events(follower, "discord.leading"), TAKEOVER_TIMEOUT, "the new leader's READY")
        took = time.monotonic() - killed_at
        assert await lease_holder(world) is follower

        await ask_in_thread(fake, thread, CAROL, "timeline", f"Timeline of {request_id}")
        # Signed on the new leader, executed, and the incident's fix offered as a playbook.
        for user in (BOB, CAROL):
            await fake.click(user, card["id"], f"signoff:approve:{request_id}")
        await wait_until(lambda: any(f"{request_id} succeeded" in t for t in thread_texts(fake, thread)),
                         message="the execution")
        await fake.slash_command(CAROL, "signoff", {"incident": "INC-1", "score": 4}, subcommand="resolve")
        offer = await wait_until(
            lambda: next((m for m in fake.thread_messages(thread) if "Playbook PB-1" in str(m["content"])), None),
            message="the playbook offer")
        await fake.add_reaction(BOB, thread, offer["id"], "✅")
        await wait_until(lambda: any(t.startswith(f"<@{BOB}>") for t in thread_texts(fake, thread)),
                         message="the vote's answer")
        # A last question in the thread: once it is answered, anything a second session would have done is in.
        await ask_in_thread(fake, thread, BOB, "status", f"{request_id} is ")

        texts = thread_texts(fake, thread)
        assert sum(1 for t in texts if f"Timeline of {request_id}" in t) == 2, texts
        assert sum(1 for t in texts if t.startswith(f"<@{BOB}>")) == 1, texts
        assert sum(1 for t in texts if t.startswith(f"✅ {request_id} succeeded")) == 1, texts
        assert sum(1 for t in texts if t.startswith(f"✅ {request_id} is ")) == 1, texts
        assert sum(1 for replica in world.replicas for _ in log_events(replica, "discord.reaction")) == 1
        assert sum(1 for replica in world.replicas for _ in log_events(replica, "discord.thread_answered")) == 3
        assert len([m for m in fake.messages(fake.channel_id) if m.get("embeds")]) == 1  # one card
        assert "Traceback" not in follower.log_text()
        print(f"discord takeover: {took:.1f} s after SIGKILL")  # shown with -s
