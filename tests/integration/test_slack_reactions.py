"""`reaction_added` → the core's playbook vote port, and its reply → chat.postEphemeral to the reactor.

The playbook flow itself lands in its own issue; here a vote handler is registered on the
core's extension point (`ChatCommands.on_vote`) and a playbook offer is queued in the outbox
exactly as that flow will queue it (a thread message anchored as `PB-…`).
"""

from __future__ import annotations

from core.chat import ChatContext, Reply
from core.outbox import MessageKind, NewMessage
from core.policy import Person
from tests.fakes.slack import reaction_added_event
from tests.integration.test_slack_support import ALICE, BOB, CAROL, CHANNEL, RESTART_API, TEAM_POLICY, slack_world


async def test_reactions_on_a_playbook_offer_become_votes_told_privately(database_url: str) -> None:
    async with slack_world(database_url, policy=TEAM_POLICY) as world:
        votes: list[tuple[str, bool, str, str]] = []

        async def vote(key: str, approve: bool, person: Person, ctx: ChatContext) -> Reply:
            votes.append((key, approve, person.name, ctx.account))
            return Reply(text=f"Your {'approval' if approve else 'rejection'} of {key} is recorded.")

        world.app.chat.on_vote(vote)
        await world.command(ALICE, RESTART_API)
        await world.settle()
        offer = NewMessage(platform="slack", channel=CHANNEL, kind=MessageKind.thread, key="R-1",
                           text="📘 Playbook PB-1 proposed: react ✅ to approve, ❌ to reject.", anchor_as="PB-1")
        await world.app.db.write(lambda uow: uow.outbox.add([offer]))
        await world.settle()
        offer_ts = next(m["ts"] for m in world.fake.thread(CHANNEL, world.card("R-1")["ts"])
                        if "PB-1" in m["text"])

        for user, name in ((BOB, "white_check_mark"), (CAROL, "+1::skin-tone-3"), (ALICE, "x"),
                           (BOB, "tada")):  # not a vote
            assert await world.event(reaction_added_event(user, name, CHANNEL, offer_ts)) == 200
        # A ✅ on the request's card is not a playbook vote.
        await world.event(reaction_added_event(CAROL, "white_check_mark", CHANNEL, world.card("R-1")["ts"]))
        await world.settle()

        assert sorted(votes) == [("PB-1", False, "alice", ALICE), ("PB-1", True, "bob", BOB),
                                 ("PB-1", True, "carol", CAROL)]
        told = {(e["user"], e["channel"], e["via"]): e["text"] for e in world.fake.ephemerals
                if "PB-1" in str(e["text"])}
        assert told == {
            (BOB, CHANNEL, "chat.postEphemeral"): "Your approval of PB-1 is recorded.",
            (CAROL, CHANNEL, "chat.postEphemeral"): "Your approval of PB-1 is recorded.",
            (ALICE, CHANNEL, "chat.postEphemeral"): "Your rejection of PB-1 is recorded.",
        }
