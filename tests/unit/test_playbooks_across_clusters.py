"""`[playbooks] across_clusters`: a playbook learned on one cluster is offered on another only when the policy
says so, and then the proposal says where it was learned (issue 19, item 3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.app.decisions import DecisionManager
from core.domain.incidents import Incident
from core.domain.playbook_reach import crossing_note, learned_on, reach
from core.domain.playbooks import Playbook, PlaybookStatus, Trigger
from core.domain.policy_file import parse_policy

AT = datetime(2026, 12, 1, tzinfo=UTC)
FLEET = """\
[clusters.eu-1]
default = true

[clusters.us-1]

[playbooks]
across_clusters = {across}
"""


def _playbook(**labels: str) -> Playbook:
    return Playbook(
        id="PB-1", name="crash", template="rollout restart deployment/{deployment} -n {namespace}",
        trigger=Trigger(alert_name="KubePodCrashLooping", labels={"namespace": "prod", "deployment": "api", **labels},
                        symptom="back-off restarting failed container"),
        source_incident="INC-1", effectiveness=5, status=PlaybookStatus.approved, created_at=AT,
    )


def _incident(**labels: str) -> Incident:
    return Incident(id="INC-2", title="crash", alert_name="KubePodCrashLooping",
                    labels={"namespace": "prod", "deployment": "api", **labels},
                    symptom="back-off restarting failed container", created_at=AT, updated_at=AT)


class _NoCluster:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError("the playbook decision reads no cluster")


def _manager(across: bool) -> DecisionManager:
    policy = parse_policy(FLEET.format(across=str(across).lower()), "fleet.toml")
    return DecisionManager(policy=policy, cluster=_NoCluster())  # type: ignore[arg-type]


def test_the_key_defaults_to_false_and_must_be_a_boolean() -> None:
    assert parse_policy("", "x.toml").playbooks.across_clusters is False
    assert parse_policy("[playbooks]\nacross_clusters = true\n", "x.toml").playbooks.across_clusters is True
    with pytest.raises(Exception, match=r"line 2 \(playbooks.across_clusters\): must be true or false"):
        parse_policy("[playbooks]\nacross_clusters = 1\n", "x.toml")


def test_where_a_playbook_was_learned() -> None:
    assert learned_on(_playbook(cluster="us-1"), "eu-1") == "us-1"
    assert learned_on(_playbook(), "eu-1") == "eu-1"  # learned before [clusters]: the default cluster's
    assert reach(_playbook(cluster="us-1"), "eu-1", "eu-1", across=False) is None
    crossed = reach(_playbook(cluster="us-1"), "eu-1", "eu-1", across=True)
    assert crossed is not None and "cluster" not in crossed.labels
    assert reach(_playbook(cluster="eu-1"), None, "eu-1", across=False) == _playbook(cluster="eu-1").trigger
    assert crossing_note(_playbook(cluster="us-1"), "eu-1", "eu-1") == "; learned on cluster us-1"
    assert crossing_note(_playbook(cluster="eu-1"), "eu-1", "eu-1") == ""


async def test_another_clusters_playbook_is_not_proposed_by_default() -> None:
    decision = await _manager(across=False).decide(_incident(cluster="eu-1"), [_playbook(cluster="us-1")])
    assert decision.proposal.track != "playbook"


async def test_the_same_clusters_playbook_is_proposed_without_a_note() -> None:
    decision = await _manager(across=False).decide(_incident(cluster="us-1"), [_playbook(cluster="us-1")])
    assert decision.proposal.track == "playbook" and decision.proposal.playbook_id == "PB-1"
    assert "learned on" not in (decision.proposal.rationale or "")


async def test_with_across_clusters_it_is_proposed_saying_where_it_was_learned() -> None:
    decision = await _manager(across=True).decide(_incident(cluster="eu-1"), [_playbook(cluster="us-1")])
    proposal = decision.proposal
    assert proposal.track == "playbook" and proposal.playbook_id == "PB-1"
    assert proposal.similarity is not None and proposal.similarity >= 0.85
    assert proposal.rationale == "PB-1 fixed INC-1 (effectiveness 5/5; learned on cluster us-1)"
    assert decision.action == "kubectl rollout restart deployment/api -n prod"
