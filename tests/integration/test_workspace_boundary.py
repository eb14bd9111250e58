"""The workspace boundary (issue: hardening, defect 12): commands, clicks, thread replies and reactions from
another Slack workspace are refused; the workspace is the one `auth.test` reports. Tested without a policy file,
where it is the only boundary of who may act."""

from __future__ import annotations

from core.app.handlers import ChatCommands
from core.chat.commands import ChatContext, Help, List
from testkit.fakes.slack import block_actions_body, event_body, message_event, post_signed, slash_command_body
from testkit.support import make_settings, running_app
from testkit.support.slack import CHANNEL, SECRET, slack_world

OTHER = "T0OTHERORG"


async def test_another_slack_workspace_is_refused(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url) as world:  # no policy file: anyone in the workspace may act
        ours = world.fake.team_id
        assert await world.command("U0ALICE", "request rollout restart deployment/api -n prod") == 200
        await world.settle()
        request_id = "R-1"
        card = world.card(request_id)

        # A command from another workspace: refused, nothing stored.
        url = world.fake.new_response_url(CHANNEL, user_id="U0EVE")
        body = slash_command_body("request cordon node-1", "U0EVE", CHANNEL, url, team_id=OTHER)
        assert (await post_signed(world.events_url, body, SECRET, session=world.session))[0] == 200
        await world.settle()
        assert len(await world.app.service.pending()) == 1
        assert any(ours in text and OTHER in text for text in world.private_texts("U0EVE")), \
            world.private_texts("U0EVE")

        # A click from another workspace on our card: refused, not signed.
        url = world.fake.new_response_url(CHANNEL, card["ts"], user_id="U0EVE")
        body = block_actions_body("U0EVE", CHANNEL, card["ts"], "signoff_approve", request_id, url, message=card,
                                  team_id=OTHER)
        assert (await post_signed(world.events_url, body, SECRET, session=world.session))[0] == 200
        await world.settle()
        assert (await world.app.service.get(request_id)).signed == 0

        # A thread reply from another workspace is not answered.
        before = len(world.thread_texts(request_id))
        reply = message_event("U0EVE", CHANNEL, "timeline", team_id=OTHER)
        reply["thread_ts"] = card["ts"]
        assert (await post_signed(world.events_url, event_body(reply, team_id=OTHER), SECRET,
                                  session=world.session))[0] == 200
        await world.settle()
        assert len(world.thread_texts(request_id)) == before

        # Someone in our workspace still signs.
        assert await world.click("U0BOB", "approve", request_id) == 200
        await world.settle()
        assert (await world.app.service.get(request_id)).signed == 1


async def test_the_core_refuses_any_platform_outside_its_workspace(sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url)) as app:
        chat: ChatCommands = app.chat
        chat.serve_workspace("discord", "1111")
        inside = ChatContext(platform="discord", account="42", workspace="1111")
        outside = ChatContext(platform="discord", account="42", workspace="2222")
        dm = ChatContext(platform="discord", account="42", workspace="dm")
        assert (await chat.run(List(), inside)).ok
        for ctx in (outside, dm):
            reply = await chat.run(Help(), ctx)
            assert not reply.ok and "1111" in reply.text and "refused" in reply.text
            assert await chat.thread_reply("123", "timeline", ctx) is False
            assert await chat.reaction("123", "✅", ctx) is None
        # Slack is not bounded by Discord's guild.
        assert (await chat.run(List(), ChatContext(platform="slack", account="U1", workspace="T9"))).ok
