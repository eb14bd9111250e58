"""Paging rules without I/O: the policy's groups and escalation keys, who a card mentions, when the sweep
escalates and reminds, impossible quorums, and how each adapter writes mentions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.discord.render import allowed_mentions
from adapters.discord.render import mention_text as discord_mentions
from adapters.slack.render import card_text, mention_text, with_mentions
from core.app.maintenance import due_pages
from core.app.notify import card_posts, group_mentions, not_yet_signed, people_mentions, who_can_sign
from core.chat.cards import Card, Mentions
from core.domain import approvals
from core.domain.approvals import Place, Signature
from core.domain.operations import parse_operation
from core.domain.policy import Person, Policy, Risk, SignRule
from core.domain.policy_file import PolicyFileError, parse_policy

POLICY = """
[people.alice]
slack = "U0ALICE"
discord = "111"
groups = ["sre"]
[people.bob]
slack = "U0BOB"
discord = "222"
groups = ["sre"]
[people.carol]
slack = "U0CAROL"
groups = ["sre", "leads"]
[people.dave]
groups = ["dev"]

[risk.medium]
quorum = 1
approvers = ["sre"]

[risk.high]
quorum = 2
approvers = ["sre"]
escalate_after = "10m"
escalate_to = ["leads"]
remind_before_expiry = "300s"

[risk.critical]
quorum = 3
approvers = ["sre", "leads"]

[groups.leads]
slack = "S0LEADS"
discord = "999"
"""
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _request(policy: Policy, risk: Risk = Risk.high, by: str = "alice") -> approvals.ApprovalRequest:
    created = approvals.new_request(
        request_id="R-1", operation=parse_operation("rollout restart deployment/api -n prod"),
        action="rollout restart deployment/api -n prod", requested_by=policy.people[by], via="slack", at=NOW,
        risk=risk, stated_risk=risk, rule=policy.rule_for(risk), expire_after=timedelta(minutes=30), reason=None,
        incident_id=None, blast=None, proposal=None,
        places=(Place(platform="slack", channel="C1"), Place(platform="discord", channel="5")),
    )
    return created.request


def test_the_policy_reads_groups_and_escalation() -> None:
    policy = parse_policy(POLICY, "signoff.toml")
    high = policy.rule_for(Risk.high)
    assert high.escalate_after == timedelta(minutes=10) and high.escalate_to == ("leads",)
    assert high.remind_before_expiry == timedelta(minutes=5)
    assert policy.rule_for(Risk.medium).escalate_after is None
    assert policy.groups["leads"].slack == "S0LEADS" and policy.groups["leads"].discord == "999"
    for text, seconds in (("45s", 45), ("10m", 600), ("2h", 7200)):
        assert SignRule(quorum=1, escalate_after=text, escalate_to=("x",)).escalate_after == \
            timedelta(seconds=seconds)


BAD = [
    ('[groups.sre]\nslack = "S1"\nteams = "x"\n', 3, "groups.sre.teams", "unknown key"),
    ('[groups]\nsre = 1\n', 2, "groups.sre", "must be a table"),
    ('[risk.high]\nquorum = 2\nescalate_after = "soon"\nescalate_to = ["x"]\n', 3, "risk.high.escalate_after",
     "not a duration"),
    ('[risk.high]\nquorum = 2\nremind_before_expiry = "5 minutes"\n', 3, "risk.high.remind_before_expiry",
     "not a duration"),
    ('[risk.high]\nquorum = 2\nescalate_after = "10m"\n', 1, "risk.high", "go together"),
    ('[groups.leads]\nslack = "S1"\n[risk.high]\nquorum = 2\nescalate_after = "1m"\nescalate_to = ["lead"]\n', 6,
     "risk.high.escalate_to", "unknown group `lead`"),
]


@pytest.mark.parametrize(("text", "line", "field", "problem"), BAD)
def test_paging_errors_name_file_line_and_field(text: str, line: int, field: str, problem: str) -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, "/etc/signoff.toml")
    assert (caught.value.line, caught.value.field) == (line, field)
    assert problem in caught.value.message
    assert caught.value.message.startswith(f"/etc/signoff.toml, line {line}")


def test_a_card_mentions_group_handles_or_else_each_eligible_person() -> None:
    policy = parse_policy(POLICY, "signoff.toml")
    high = _request(policy)
    # sre has no handle: every SRE but the requester, by their account on that platform.
    assert who_can_sign(policy, high, "slack") == Mentions(users=("U0BOB", "U0CAROL"))
    assert who_can_sign(policy, high, "discord") == Mentions(users=("222",))
    critical = _request(policy, Risk.critical)
    assert who_can_sign(policy, critical, "slack") == Mentions(users=("U0BOB", "U0CAROL"), groups=("S0LEADS",))
    assert who_can_sign(policy, critical, "discord") == Mentions(users=("222",), groups=("999",))
    posts = card_posts(high, lambda platform: who_can_sign(policy, high, platform))
    assert [(m.platform, m.mentions.users) for m in posts] == [("slack", ("U0BOB", "U0CAROL")), ("discord", ("222",))]
    assert all(not m.mentions for m in card_posts(high))
    # Without a roster nobody is known, so nobody is paged.
    assert not who_can_sign(Policy(), high, "slack")
    assert people_mentions(Policy(), ["slack:U0X", "discord:5"], "slack") == Mentions(users=("U0X",))


def test_escalation_and_reminder_are_due_once_while_pending() -> None:
    policy = parse_policy(POLICY, "signoff.toml")
    rule = policy.rule_for(Risk.high)
    request = _request(policy)
    assert due_pages(request, rule, NOW + timedelta(minutes=9, seconds=59)) == []
    assert due_pages(request, rule, NOW + timedelta(minutes=10)) == ["escalate"]
    escalated = approvals.escalate(request, at=NOW + timedelta(minutes=10), to=("leads",)).request
    assert escalated.version == request.version + 1
    assert due_pages(escalated, rule, NOW + timedelta(minutes=24)) == []
    assert due_pages(escalated, rule, NOW + timedelta(minutes=25)) == ["remind"]
    reminded = approvals.remind(escalated, at=NOW + timedelta(minutes=25), waiting=("bob",)).request
    assert due_pages(reminded, rule, NOW + timedelta(minutes=26)) == []
    # Late sweeps: both at once, but nothing once it expired or stopped pending.
    assert due_pages(request, rule, NOW + timedelta(minutes=26)) == ["escalate", "remind"]
    assert due_pages(request, rule, NOW + timedelta(minutes=30)) == []
    rejected = approvals.reject(request, by=policy.people["bob"], at=NOW).request
    assert due_pages(rejected, rule, NOW + timedelta(minutes=26)) == []
    assert due_pages(request, policy.rule_for(Risk.medium), NOW + timedelta(minutes=26)) == []


def test_the_reminder_names_who_has_not_signed() -> None:
    policy = parse_policy(POLICY, "signoff.toml")
    request = _request(policy).model_copy(update={
        "signatures": (Signature(person="bob", via="slack", at=NOW),)})
    assert not_yet_signed(policy, request) == ["carol"]
    assert group_mentions(policy, ["leads"], "slack") == Mentions(groups=("S0LEADS",))


def test_impossible_quorums() -> None:
    policy = parse_policy(POLICY, "signoff.toml")
    high = policy.rule_for(Risk.high)  # 2 of alice, bob, carol
    assert policy.quorum_shortfall(high, requester="alice") is None
    critical = policy.rule_for(Risk.critical)  # 3 of alice, bob, carol
    assert policy.quorum_shortfall(critical, requester="dave") is None
    assert policy.quorum_shortfall(critical, requester="alice") == (
        "it needs 3 signature(s) from members of sre, leads, and only 2 could sign (bob, carol)")
    assert Policy().quorum_shortfall(critical, requester="alice") is None  # no roster: anyone may sign
    warnings = policy.quorum_warnings()
    assert [w.split(":")[0] for w in warnings] == ["critical"]
    assert "exactly 3 people may sign (alice, bob, carol)" in warnings[0]
    lonely = Policy(people={"a": Person(name="a", groups=frozenset({"sre"}))},
                    risk={Risk.high: SignRule(quorum=2, approvers=("sre",))})
    assert any(w.startswith("high:") and "only 1 people may sign (a)" in w for w in lonely.quorum_warnings())


def test_adapters_write_mentions_in_their_own_syntax() -> None:
    mentions = Mentions(users=("U0BOB", "<!channel>"), groups=("S0SRE",))
    assert mention_text(mentions) == "<!subteam^S0SRE> <@U0BOB>"  # never anything but an id inside <…>
    assert with_mentions("R-1 expired", Mentions(users=("U0ALICE",))) == "<@U0ALICE> R-1 expired"
    assert with_mentions("R-1 expired", None) == "R-1 expired"
    card = Card(key="R-1", title="R-1 · restart", mentions=Mentions(groups=("S0SRE",)))
    assert card_text(card).startswith("Can sign: <!subteam^S0SRE> · R-1")
    assert "<!" not in card_text(card.model_copy(update={"mentions": Mentions()}))
    discord = Mentions(users=("111", "@everyone"), groups=("999",))
    assert discord_mentions(discord) == "<@&999> <@111>"
    pings = allowed_mentions(discord).to_dict()
    assert pings["parse"] == [] and pings["users"] == [111] and pings["roles"] == [999]
    assert allowed_mentions(None).to_dict() == {"parse": []}
