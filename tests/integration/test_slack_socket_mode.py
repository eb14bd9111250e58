"""Slack in Socket Mode (SLACK_APP_TOKEN set): envelopes over the fake's websocket, acks checked.

The same composition as HTTP mode, minus /slack/events: AsyncSocketModeHandler fetches a
websocket URL with apps.connections.open through SLACK_API_URL and receives slash commands,
clicks and events there.
"""

from __future__ import annotations

from aiohttp import ClientSession

from testkit.fakes.slack import thread_message_event
from testkit.support.slack import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    RESTART_API,
    TEAM_POLICY,
    buttons,
    card_text,
    slack_world,
)


async def test_command_clicks_and_thread_message_are_acked_and_processed(database_url: str) -> None:
    async with slack_world(database_url, socket_mode=True, policy=TEAM_POLICY) as world:
        fake = world.fake
        assert fake.calls_to("apps.connections.open")
        # Socket Mode serves no Slack endpoint over HTTP.
        async with ClientSession() as session, session.post(f"{world.base_url}/slack/events", data=b"{}") as resp:
            assert resp.status == 404

        await world.command(ALICE, RESTART_API)  # each of these waits for the envelope's ack
        await world.settle()
        assert any("R-1 posted for approval" in t for t in world.private_texts(ALICE))
        card = world.card("R-1")
        assert [b["action_id"] for b in buttons(card)] == ["signoff_approve", "signoff_approve_comment",
                                                               "signoff_reject"]

        await world.click(ALICE, "approve", "R-1")
        await world.click(BOB, "approve", "R-1")
        await world.settle()
        assert any("so you can't sign it" in t for t in world.private_texts(ALICE))
        assert "▰▱ 1/2" in card_text(world.card("R-1"))

        await world.event(thread_message_event(BOB, CHANNEL, "timeline", card["ts"]))
        await world.event(thread_message_event(BOB, CHANNEL, "ship it", card["ts"]))
        await world.settle()
        assert len([t for t in world.thread_texts("R-1") if "Timeline of R-1" in t]) == 1

        await world.click(CAROL, "approve", "R-1")
        await world.settle()
        assert len(world.real_writes("deployments/api")) == 1
        final = world.card("R-1")
        assert buttons(final) == [] and "SUCCEEDED" in card_text(final)
        assert len([t for t in world.thread_texts("R-1") if "R-1 succeeded" in t]) == 1

        # Every envelope the fake sent was acknowledged, none with an error payload.
        sent = [e["envelope_id"] for e in fake.socket_sent if "envelope_id" in e]
        acked = {r["envelope_id"] for r in fake.socket_received if "envelope_id" in r}
        assert len(sent) == 6 and set(sent) <= acked


async def test_envelopes_signoff_does_not_use_are_still_acked(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, socket_mode=True, policy=TEAM_POLICY) as world:
        fake = world.fake
        ids = [
            await fake.socket_send("events_api", {"type": "member_joined_channel", "user": BOB, "channel": CHANNEL}),
            await fake.socket_send("events_api", {"type": "app_mention", "user": BOB, "channel": CHANNEL,
                                                  "text": "<@UBOT> hi", "ts": "1764200000.000900"}),
            await fake.socket_send("interactive", {
                "type": "shortcut", "callback_id": "something_else", "trigger_id": "1.2.3",
                "user": {"id": BOB, "username": "bob", "team_id": "T0TEST"}, "team": {"id": "T0TEST"},
                "api_app_id": "A0TEST", "token": "verification-token"}),
        ]
        for envelope_id in ids:
            await fake.wait_ack(envelope_id)
        await world.settle()
        assert fake.calls_to("chat.postMessage") == [] and fake.ephemerals == []


async def test_reconnects_after_slack_closes_the_socket(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, socket_mode=True, policy=TEAM_POLICY) as world:
        fake = world.fake
        await fake.socket_send_disconnect()
        await fake.wait_socket_connected(count=2, timeout=15)
        await world.command(ALICE, RESTART_API)
        await world.settle()
        assert world.card("R-1")
