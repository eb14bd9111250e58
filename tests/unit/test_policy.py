from __future__ import annotations

from datetime import timedelta

import pytest

from core.domain.cluster import TargetFacts
from core.domain.operations import parse_operation
from core.domain.policy import Policy, Risk, format_duration, parse_duration
from core.domain.policy_file import PolicyFileError, parse_policy
from core.errors import PolicyViolation

EXAMPLE = """\
[people.alice]
slack = "U0ALICE"
discord = "111111111111111111"
groups = ["sre"]

[people.bob]
slack = "U0BOB"
groups = ["sre", "leads"]

[risk.medium]
quorum = 1
approvers = ["sre"]

[risk.high]
quorum = 2
approvers = ["sre"]

[risk.critical]
quorum = 3
approvers = ["sre", "leads"]

[requests]
expire_after = "30m"
protected_namespaces = ["kube-system"]
max_replicas = 50

[playbooks]
quorum = 1
approvers = ["leads"]
similarity = 0.85
"""


def facts(replicas: int) -> TargetFacts:
    return TargetFacts(exists=True, replicas=replicas)


FLOORS = [
    ("rollout restart deployment/api -n prod", None, None, Risk.medium),
    ("rollout restart deployment/api -n prod", Risk.low, None, Risk.low),
    ("rollout restart deployment/api -n prod", Risk.critical, None, Risk.critical),
    ("rollout restart deployment/coredns -n kube-system", Risk.low, None, Risk.critical),
    ("delete pod coredns-1 -n kube-system", None, None, Risk.critical),
    ("scale deployment/web --replicas=0 -n prod", Risk.low, facts(2), Risk.high),
    ("scale deployment/web --replicas=0 -n prod", None, None, Risk.high),
    ("scale deployment/web --replicas=1 -n prod", Risk.low, facts(4), Risk.high),
    ("scale deployment/web --replicas=2 -n prod", Risk.low, facts(4), Risk.low),
    ("scale deployment/web --replicas=8 -n prod", Risk.low, facts(4), Risk.low),
    ("cordon node-1", Risk.low, None, Risk.high),
    ("uncordon node-1", Risk.low, None, Risk.low),
    ("rollout undo deployment/api -n prod", None, None, Risk.high),
    ("delete pod web-1 -n prod", None, None, Risk.medium),
]


@pytest.mark.parametrize(("action", "stated", "target", "expected"), FLOORS)
def test_effective_risk_is_stated_raised_to_the_floor(action: str, stated: Risk | None,
                                                       target: TargetFacts | None, expected: Risk) -> None:
    assert Policy().effective_risk(parse_operation(action), stated, target) is expected


def test_builtin_policy() -> None:
    policy = Policy()
    assert [policy.rule_for(r).quorum for r in Risk] == [1, 1, 2, 3]
    assert policy.requests.expire_after == timedelta(minutes=30)
    assert policy.open
    person = policy.identify("slack", "U123")
    assert person is not None and person.name == "slack:U123"
    assert policy.rule_for(Risk.high).admits(person)


def test_example_policy_file() -> None:
    policy = parse_policy(EXAMPLE, "signoff.toml")
    alice = policy.identify("slack", "U0ALICE")
    assert alice is not None and alice.name == "alice"
    assert policy.identify("discord", "111111111111111111") == alice
    assert policy.identify("slack", "U0NOBODY") is None
    assert policy.rule_for(Risk.critical).quorum == 3
    low = policy.rule_for(Risk.low)  # left out of the file: built-in quorum, approvers of the level above
    assert (low.quorum, low.approvers) == (1, ("sre",))
    bob = policy.identify("slack", "U0BOB")
    assert bob is not None
    assert policy.playbooks.sign_rule.admits(bob) and not policy.playbooks.sign_rule.admits(alice)
    assert not policy.rule_for(Risk.critical).admits(policy.people["alice"].model_copy(
        update={"groups": frozenset({"dev"})}))


def test_max_replicas() -> None:
    policy = parse_policy(EXAMPLE, "signoff.toml")
    policy.check_operation(parse_operation("scale deployment/web --replicas=50"))
    with pytest.raises(PolicyViolation) as caught:
        policy.check_operation(parse_operation("scale deployment/web --replicas=51"))
    assert "50 or fewer" in caught.value.message


BAD_FILES = [
    ("[people.alice\nslack = 1\n", 1, None, "not valid TOML"),
    ("[people.alice]\nslack = \"U1\"\ngroup = [\"sre\"]\n", 3, "people.alice.group", "unknown key"),
    ("[risk.high]\nquorum = 0\n", 2, "risk.high.quorum", "greater than or equal to 1"),
    ("[risk.hihg]\nquorum = 2\n", 1, "risk.hihg", "unknown risk level"),
    ("\n\n[requests]\nmax_replicas = 5\nexpire_after = \"soon\"\n", 5, "requests.expire_after", "not a duration"),
    ("[requests]\nprotected_namespaces = \"kube-system\"\n", 2, "requests.protected_namespaces", "must be a list"),
    ("[playbooks]\nsimilarity = 1.5\n", 2, "playbooks.similarity", "less than or equal to 1"),
    ("[people.a]\nslack = \"U1\"\n[people.b]\nslack = \"U1\"\n", 4, "people.b.slack", "already belongs to a"),
    ("[teams]\nx = 1\n", 1, "teams", "unknown section"),
]


@pytest.mark.parametrize(("text", "line", "field", "problem"), BAD_FILES)
def test_policy_file_errors_name_file_line_and_field(text: str, line: int, field: str | None, problem: str) -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, "/etc/signoff.toml")
    error = caught.value
    assert error.line == line
    assert error.field == field
    assert problem in error.message
    assert error.message.startswith(f"/etc/signoff.toml, line {line}")


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("1h", 3600), ("2h30m", 9000), ("45s", 45),
                                               ("1d", 86400)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds
    assert parse_duration(format_duration(timedelta(seconds=seconds))).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "30", "m30", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("action", "facts", "floor"), [
    ("scale deployment/api --replicas=2 -n prod", TargetFacts(exists=True, replicas=3), Risk.low),
    ("scale deployment/api --replicas=1 -n prod", TargetFacts(exists=True, replicas=3), Risk.high),
    # The cluster could not be read, or did not tell the replica count: the worst case.
    ("scale deployment/api --replicas=2 -n prod", None, Risk.high),
    ("scale deployment/api --replicas=2 -n prod", TargetFacts(exists=True), Risk.high),
    # A target the cluster says is missing ends blocked at execution; its floor is the ordinary one.
    ("scale deployment/api --replicas=2 -n prod", TargetFacts(exists=False), Risk.low),
    # Floors that do not depend on the cluster do not change when it cannot be read.
    ("rollout restart deployment/api -n prod", None, Risk.low),
    ("cordon node-1", None, Risk.high),
])
def test_unknown_facts_count_as_the_worst_case(action: str, facts: TargetFacts | None, floor: Risk) -> None:
    op = parse_operation(action)
    assert Policy().risk_floor(op, facts) is floor
    assert Policy.floor_reads_facts(op) is (op.kind == "scale")


ROSTER_WITHOUT_PLAYBOOKS = """
[people.alice]
groups = ["sre"]
[people.bob]
groups = ["leads"]
[people.guest]
groups = []

[risk.medium]
quorum = 1
approvers = ["sre"]
[risk.critical]
quorum = 2
approvers = ["leads"]
"""


def test_a_left_out_playbooks_section_never_widens_who_may_act() -> None:
    policy = parse_policy(ROSTER_WITHOUT_PLAYBOOKS, "team.toml")
    # The approvers of the highest risk level, not everyone.
    assert policy.playbooks.approvers == ("leads",)
    assert not policy.playbooks.sign_rule.admits(policy.people["guest"])
    assert not policy.playbooks.sign_rule.admits(policy.people["alice"])
    assert policy.playbooks.sign_rule.admits(policy.people["bob"])
    # A person with no groups may neither approve a playbook nor rate an incident (a 5 approves one).
    assert not policy.is_responder(policy.people["guest"])
    # Said explicitly, it is honoured.
    explicit = parse_policy(ROSTER_WITHOUT_PLAYBOOKS + '[playbooks]\napprovers = ["sre"]\n', "team.toml")
    assert explicit.playbooks.approvers == ("sre",)
    # Without a roster the policy is open: anyone may act, as before.
    assert parse_policy("[risk.high]\nquorum = 2\n", "open.toml").playbooks.approvers == ("*",)


@pytest.mark.parametrize(("text", "field"), [
    ('[requests]\nexpire_after = "0s"\n', "requests.expire_after"),
    ('[verify]\ntimeout = "0m"\n', "verify.timeout"),
    ('[retention]\nkeep = "0h"\n', "retention.keep"),
])
def test_every_policy_duration_is_at_least_a_second(text: str, field: str) -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, "team.toml")
    assert field in str(caught.value) and "at least one second" in str(caught.value)
