"""Shared set-up for the Discord adapter tests, the twin of `testkit.support.slack`: the team's Discord
accounts and policy, the app as `signoff run` composes it with `start_discord`, and helpers that drive
FakeDiscord (commands, clicks) and read what it shows (cards, threads)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from bot.bootstrap import App
from bot.chats.discord import start_discord
from core.domain.events import EventType
from testkit.fakes.discord import (
    FakeDiscord,
    InteractionReply,
)
from testkit.support.app import make_settings, running_app
from testkit.support.policy import team_policy

ALICE = "111111111111111111"
BOB = "222222222222222222"
CAROL = "333333333333333333"
MALLORY = "444444444444444444"
EVE = "555555555555555555"  # a guild member the policy does not know

POLICY = team_policy(discord={"alice": ALICE, "bob": BOB, "carol": CAROL, "mallory": MALLORY})

RESTART_API = "rollout restart deployment/api -n prod"
THREAD_MESSAGES = r"/channels/{}/messages"
SUBCOMMANDS = {"request", "status", "timeline", "list", "cancel", "resolve", "incidents", "playbooks", "help",
               "breakglass", "countersign", "dispute"}


def settings_for(fake: FakeDiscord, database_url: str, **env: Any) -> Any:
    values: dict[str, Any] = {
        "DISCORD_BOT_TOKEN": fake.token, "DISCORD_API_URL": fake.api_url, "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISCORD_CHANNEL_ID": fake.channel_id, "DISCORD_GUILD_ID": fake.guild_id,
    }
    values.update(env)
    return make_settings(database_url, **{k: v for k, v in values.items() if v is not None})


@contextlib.asynccontextmanager
async def discord_service(fake: FakeDiscord, database_url: str, *, policy: str = POLICY,
                          **env: Any) -> AsyncIterator[App]:
    """The app as `signoff run` composes it: recovery, the Discord adapter, then the background workers
    (which stop first on the way out)."""
    settings = settings_for(fake, database_url, **env)
    async with running_app(settings, policy=policy) as app:
        await app.maintenance.recover(sole_worker=app.db.sole_worker)
        async with start_discord(app, settings, guild_ready_timeout=0.05), app.background():
            yield app


async def answered(fake: FakeDiscord, sent: dict[str, Any]) -> list[InteractionReply]:
    """The interaction's callback and its first follow-up, once both arrived."""
    await fake.wait_for(lambda: len(fake.interaction_responses(sent["id"])) >= 2)
    return fake.interaction_responses(sent["id"])


def followup_text(replies: list[InteractionReply]) -> str:
    return "\n".join(str(r.json.get("content")) for r in replies if r.kind == "followup")


async def command(fake: FakeDiscord, user: str, sub: str, **options: Any) -> list[InteractionReply]:
    sent = await fake.slash_command(user, "signoff", options, subcommand=sub)
    replies = await answered(fake, sent)
    # Acknowledged first with an ephemeral "thinking" defer; the answer replaces it, still ephemeral.
    assert (replies[0].kind, replies[0].type, replies[0].ephemeral) == ("callback", 5, True)
    assert replies[1].ephemeral
    return replies


async def click(fake: FakeDiscord, user: str, message_id: str, custom_id: str) -> str:
    sent = await fake.click(user, message_id, custom_id)
    replies = await answered(fake, sent)
    assert (replies[0].type, replies[0].ephemeral, replies[1].ephemeral) == (5, True, True)
    return followup_text(replies)


def card_of(fake: FakeDiscord, request_id: str, channel: str | None = None) -> dict[str, Any] | None:
    for message in fake.messages(channel or fake.channel_id):
        for embed in message.get("embeds", []):
            if f" {request_id} " in f" {embed.get('title', '')} ":
                return message
    return None


async def wait_card(fake: FakeDiscord, request_id: str, where: Callable[[dict[str, Any]], bool] = lambda m: True,
                    channel: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        message = card_of(fake, request_id, channel)
        return message if message is not None and where(message) else None
    result: dict[str, Any] = await fake.wait_for(found, timeout)
    return result


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])]


def description(message: dict[str, Any]) -> str:
    return str(message["embeds"][0].get("description", ""))


def thread_texts(fake: FakeDiscord, thread_id: str) -> list[str]:
    return [m["content"] for m in fake.thread_messages(thread_id)]


async def wait_thread_text(fake: FakeDiscord, thread_id: str, needle: str, timeout: float = 10.0) -> str:
    found: str = await fake.wait_for(
        lambda: next((t for t in thread_texts(fake, thread_id) if needle in t), None), timeout)
    return found


async def anchored(app: App, message_id: str, key: str) -> None:
    """Until the outbox has recorded that `message_id` belongs to `key` (just after Discord took it)."""
    async with asyncio.timeout(10):
        while True:  # polled: the anchor is a database row, saved right after the REST call returns
            if await app.service.key_for_message("discord", message_id) == key:
                return
            await asyncio.sleep(0.01)


async def requested(fake: FakeDiscord, app: App, user: str = ALICE, **options: Any) -> tuple[dict[str, Any], str]:
    """`/signoff request` by `user`; returns the posted card (once anchored) and its thread id."""
    replies = await command(fake, user, "request", action=RESTART_API, **options)
    text = followup_text(replies)
    assert text.startswith("📝 R-"), text
    request_id = text.split()[1]
    card = await wait_card(fake, request_id, lambda m: str(m["id"]) in fake.threads)
    await anchored(app, str(card["id"]), request_id)
    return card, fake.threads[str(card["id"])]


async def executed_events(app: App, request_id: str) -> int:
    return sum(1 for e in await app.service.timeline(request_id) if e.type is EventType.executed)


def restarted_at(app: App) -> str | None:
    deployment = app.sandbox.get("deployment", "prod", "api")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    value = annotations.get("kubectl.kubernetes.io/restartedAt")
    return str(value) if value is not None else None
