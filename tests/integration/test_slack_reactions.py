"""The learning loop through Slack: the rating buttons in a request's thread, then ✅ 👍 ❌ 👎
reactions on the playbook offer (`reaction_added` → the core's vote port), answered privately
with chat.postEphemeral, and the verdict in the thread."""

from __future__ import annotations

from testkit.fakes.slack import reaction_added_event
from testkit.support.slack import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    MALLORY,
    TEAM_POLICY,
    buttons,
    slack_world,
)


async def test_rating_button_and_reaction_votes_approve_a_playbook(database_url: str) -> None:
    async with slack_world(database_url, policy=TEAM_POLICY) as world:
        fake = world.fake
        await world.command(ALICE, 'request rollout restart deployment/api -n prod incident=INC-9 reason="5xx"')
        await world.settle()
        await world.click(BOB, "approve", "R-1")
        await world.settle()
        card_ts = world.card("R-1")["ts"]

        # After the fix ran, the thread asks how well it worked, with 1-5 buttons.
        (rating,) = [m for m in fake.thread(CHANNEL, card_ts) if buttons(m)]
        rate = {b["text"]["text"]: b for b in buttons(rating)}
        assert sorted(rate) == ["1", "2", "3", "4", "5"]
        assert all(b["action_id"].startswith("signoff_rate") for b in rate.values())
        assert await world.click_button(BOB, rating, rate["4"]["action_id"], rate["4"]["value"]) == 200
        await world.settle()
        assert any("INC-9 resolved" in t for t in world.private_texts(BOB))
        (offer,) = [m for m in fake.thread(CHANNEL, card_ts) if "Playbook PB-1 proposed" in m["text"]]

        for user, reaction, target in (
            (BOB, "white_check_mark", offer["ts"]),   # not a lead: refused, privately
            (CAROL, "tada", offer["ts"]),             # not a vote
            (CAROL, "white_check_mark", card_ts),     # a ✅ on the request's card is not a playbook vote
            (MALLORY, "x", offer["ts"]),              # not a lead either
        ):
            assert await world.event(reaction_added_event(user, reaction, CHANNEL, target)) == 200
        await world.settle()
        assert [e["via"] for e in fake.ephemerals_for(BOB)][-1] == "chat.postEphemeral"
        assert "leads" in fake.ephemerals_for(BOB)[-1]["text"]
        assert fake.ephemerals_for(MALLORY) and fake.ephemerals_for(CAROL) == []
        assert not any("PB-1 approved" in t for t in world.thread_texts("R-1"))

        await world.event(reaction_added_event(CAROL, "+1::skin-tone-3", CHANNEL, offer["ts"]))
        await world.settle()
        (told,) = fake.ephemerals_for(CAROL)
        assert told["via"] == "chat.postEphemeral" and "PB-1" in told["text"] and "approved" in told["text"]
        assert any("Playbook PB-1 approved" in t for t in world.thread_texts("R-1"))
