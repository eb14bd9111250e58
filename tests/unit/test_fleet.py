"""Several clusters: naming the cluster in the action text and in chat, the policy's [clusters] tables."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from core.chat.commands import Malformed, Request
from core.chat.parser import parse_command
from core.domain.approvals import ApprovalRequest, new_request, signed_digest
from core.domain.clusters import UnknownCluster, WrongChannel, check_channel, choose_cluster
from core.domain.events import canonical_json
from core.domain.operations import RestartOp, parse_operation
from core.domain.policy import Person, Policy, Risk, SignRule
from core.domain.policy_file import PolicyFileError, parse_policy
from core.domain.request_parts import Place
from core.errors import ParseError


@pytest.mark.parametrize("text", [
    "rollout restart deployment/api -n prod --context eu-1",
    "rollout restart deployment/api --context=eu-1 -n prod",
    "kubectl rollout restart deployment/api -n prod --context eu-1",
    "restart deployment api in prod on eu-1",
])
def test_the_action_text_names_the_cluster(text: str) -> None:
    op = parse_operation(text)
    assert op == RestartOp(target="deployment", name="api", namespace="prod", cluster="eu-1")
    assert op.command() == "kubectl rollout restart deployment/api -n prod --context eu-1"


def test_no_cluster_named_leaves_the_operation_as_it_was() -> None:
    op = parse_operation("cordon node node-1")
    assert op.cluster is None
    assert op.command() == "kubectl cordon node-1"


@pytest.mark.parametrize("text", [
    "rollout restart deployment/api --context",
    "rollout restart deployment/api --context eu-1 --context us-1",
    "rollout restart deployment/api --context=-x",
])
def test_a_bad_cluster_in_the_text_is_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_operation(text)


def test_chat_request_takes_cluster() -> None:
    command = parse_command('request rollout restart deployment/api -n prod cluster=eu-1 reason="slow"')
    assert command == Request(action="rollout restart deployment/api -n prod", reason="slow", cluster="eu-1")
    assert isinstance(parse_command("request cordon node-1 cluster=a/b"), Malformed)


def test_choose_cluster() -> None:
    known = ("eu-1", "us-1")
    assert choose_cluster(named=[None, None], known=known, default="eu-1") == "eu-1"
    assert choose_cluster(named=["us-1", None], known=known, default="eu-1") == "us-1"
    assert choose_cluster(named=["us-1", "us-1"], known=known, default="eu-1") == "us-1"
    with pytest.raises(UnknownCluster, match="eu-1, us-1"):
        choose_cluster(named=["ap-9"], known=known, default="eu-1")
    with pytest.raises(UnknownCluster, match="two clusters"):
        choose_cluster(named=["us-1", "eu-1"], known=known, default="eu-1")
    with pytest.raises(UnknownCluster, match="Name the cluster"):
        choose_cluster(named=[None], known=known, default=None)


POLICY = """\
[requests]
protected_namespaces = ["kube-system"]

[clusters.eu-1]
context = "prod-eu-1"
default = true
risk_floor = "high"
protected_namespaces = ["payments"]
slack_channel = "C0PROD"
channels = ["C0PROD"]

[clusters.staging]

[alerts]
cluster_label = "k8s_cluster"
"""


def test_clusters_in_the_policy() -> None:
    policy = parse_policy(POLICY, "signoff.toml")
    assert list(policy.clusters) == ["eu-1", "staging"]
    assert policy.clusters["eu-1"].context == "prod-eu-1"
    assert policy.alerts.cluster_label == "k8s_cluster"
    restart = parse_operation("rollout restart deployment/api -n web --context eu-1")
    assert policy.risk_floor(restart) is Risk.high  # the cluster's floor
    assert policy.risk_floor(restart.model_copy(update={"cluster": "staging"})) is Risk.low
    assert policy.risk_floor(restart.model_copy(update={"namespace": "payments"})) is Risk.critical
    staging = restart.model_copy(update={"cluster": "staging", "namespace": "payments"})
    assert policy.risk_floor(staging) is Risk.low  # protected on eu-1 only
    assert policy.risk_floor(restart.model_copy(update={"cluster": None})) is Risk.high  # the default: eu-1


def test_without_clusters_nothing_changes() -> None:
    policy = parse_policy("[requests]\nmax_replicas = 5\n", "signoff.toml")
    assert policy.clusters == {}
    assert policy.alerts.cluster_label == "cluster"
    assert policy.risk_floor(parse_operation("rollout restart deployment/api -n web")) is Risk.low


@pytest.mark.parametrize(("text", "line", "words"), [
    ("[clusters.a]\ndefault = true\n\n[clusters.b]\ndefault = true\n", 5, "second default"),
    ("[clusters.a]\ncontext = \"x\"\nregion = \"eu\"\n", 3, "unknown key"),
    ("[clusters.a]\nrisk_floor = \"severe\"\n", 2, "unknown risk level"),
    ("[clusters.a]\nchannels = \"C1\"\n", 2, "must be a list"),
    ("[clusters.eu-]\n", 1, "not a cluster name"),
])
def test_check_config_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(PolicyFileError, match=words) as caught:
        parse_policy(text, "signoff.toml")
    assert caught.value.line == line


def test_a_cluster_takes_requests_only_from_its_channels() -> None:
    spec = parse_policy(POLICY, "signoff.toml").clusters["eu-1"]
    check_channel("eu-1", spec, Place(platform="slack", channel="C0PROD"))
    check_channel("eu-1", spec, None)  # the API and alerts
    with pytest.raises(WrongChannel, match="only in C0PROD, not in C0DEV"):
        check_channel("eu-1", spec, Place(platform="slack", channel="C0DEV"))


def test_the_digest_keeps_for_the_single_cluster_and_names_another() -> None:
    plain = parse_operation("rollout restart deployment/api -n prod")
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def request(op: RestartOp) -> ApprovalRequest:
        return new_request(
            request_id="R-1", operation=op, action="x", requested_by=Person(name="alice"), via="console", at=at,
            risk=Risk.medium, stated_risk=None, rule=SignRule(quorum=1), expire_after=timedelta(minutes=30),
            reason=None, incident_id=None, blast=None, proposal=None, places=(),
        ).request

    # What a digest was before clusters existed: the operation's JSON had no `cluster` key.
    before = {"request_id": "R-1", "operation": {"name": "api", "kind": "restart", "target": "deployment",
                                                  "namespace": "prod"},
              "risk": "medium", "quorum": 1, "approvers": ["*"]}
    old = hashlib.sha256(canonical_json(before).encode("utf-8")).hexdigest()
    assert isinstance(plain, RestartOp)
    assert signed_digest(request(plain)) == old
    assert signed_digest(request(plain.model_copy(update={"cluster": "eu-1"}))) != old
    assert Policy().cluster_spec(None) is None
