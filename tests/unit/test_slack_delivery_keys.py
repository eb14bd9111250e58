"""What the Slack guard middleware reads from a payload: the workspace it came from and what makes a delivery
unique (issue: hardening II, defect 11). Pure functions over payloads shaped as Slack sends them."""

from __future__ import annotations

from typing import Any

from adapters.slack.translate import acting_team, delivery_key, responder

BOT = "U0BOT"


def command(**extra: Any) -> dict[str, Any]:
    return {"command": "/signoff", "text": "help", "user_id": "U1", "channel_id": "C1", "team_id": "T1",
            "response_url": "https://hooks.slack.test/1", "trigger_id": "123.456.abc", **extra}


def event(inner: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "event_id": "Ev1", "event": inner, **extra}


THREAD_REPLY = {"type": "message", "user": "U1", "text": "status", "ts": "2.0", "thread_ts": "1.0", "channel": "C1"}


def test_a_slash_command_is_unique_by_its_trigger_id() -> None:
    assert delivery_key(command(), BOT) == "slack:command:123.456.abc"
    assert delivery_key(command(trigger_id=""), BOT) is None
    assert acting_team(command()) == "T1"


def test_only_events_signoff_answers_are_remembered() -> None:
    assert delivery_key(event(THREAD_REPLY), BOT) == "slack:event:Ev1"
    reaction = {"type": "reaction_added", "user": "U1", "reaction": "+1", "item": {"type": "message", "ts": "1.0",
                                                                                   "channel": "C1"}}
    assert delivery_key(event(reaction), BOT) == "slack:event:Ev1"
    chatter = {**THREAD_REPLY, "thread_ts": None}
    assert delivery_key(event(chatter), BOT) is None
    assert delivery_key(event({**THREAD_REPLY, "user": BOT}), BOT) is None
    assert delivery_key(event(THREAD_REPLY, event_id=None), BOT) is None


def test_clicks_are_not_deduplicated_here() -> None:
    click = {"type": "block_actions", "user": {"id": "U1", "team_id": "T1"}, "trigger_id": "9.9.z",
             "actions": [{"action_id": "signoff_approve", "value": "R-1"}]}
    assert delivery_key(click, BOT) is None


def test_the_acting_persons_own_workspace_counts() -> None:
    # In a channel shared with another organisation, the person's own workspace is theirs, not the envelope's.
    assert acting_team(event({**THREAD_REPLY, "user_team": "T2"})) == "T2"
    assert acting_team({"type": "block_actions", "user": {"id": "U1", "team_id": "T2"}, "team": {"id": "T1"}}) == "T2"
    assert acting_team({"type": "view_submission", "user": {"id": "U1"}, "team": {"id": "T1"}}) == "T1"


def test_a_refusal_goes_back_where_the_person_acted() -> None:
    to = responder(command())
    assert to is not None and (to.user, to.channel, to.response_url) == ("U1", "C1", "https://hooks.slack.test/1")
    click = responder({"type": "block_actions", "user": {"id": "U2"}, "container": {"channel_id": "C9"},
                       "response_url": "https://hooks.slack.test/2"})
    assert click is not None and (click.user, click.channel) == ("U2", "C9")
    assert responder({"type": "event_callback"}) is None
