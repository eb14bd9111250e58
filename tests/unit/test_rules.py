"""Expert rules: built-ins, caps, policy rules first, and no way off the allow-list."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.operations import (
    ACCEPTED_FORMS_TEXT,
    CordonOp,
    Operation,
    RestartOp,
    RollbackOp,
    ScaleOp,
    parse_operation,
)
from core.domain.policy import Risk, RuleSpec
from core.domain.rules import (
    BUILTIN_RULES,
    AlertFacts,
    RuleProposal,
    proposal_grammar,
    propose_by_rules,
    scale_up_target,
)
from core.errors import ParseError

NO_FACTS = AlertFacts()
KSM = {"job": "kube-state-metrics", "instance": "10.244.1.17:8080", "severity": "warning",
       "prometheus": "monitoring/kube-prometheus-stack-prometheus", "service": "kube-state-metrics"}

# (alert, labels, facts, expected operation, a fragment of the rationale)
BUILTINS: list[tuple[str, dict[str, str], AlertFacts, Operation, str]] = [
    ("KubePodCrashLooping", {**KSM, "namespace": "prod", "pod": "api-7d9f-x2x4z", "container": "api"},
     AlertFacts(owner="deployment/api"), RestartOp(target="deployment", name="api", namespace="prod"),
     "KubePodCrashLooping on prod/api-7d9f-x2x4z: restart its owner deployment/api"),
    ("KubePodNotReady", {"namespace": "data", "pod": "postgres-0", "severity": "warning"},
     AlertFacts(owner="statefulset/postgres"), RestartOp(target="statefulset", name="postgres", namespace="data"),
     "restart its owner statefulset/postgres"),
    ("KubeContainerWaiting", {"namespace": "logging", "pod": "fluent-bit-x2x4z", "container": "fluent-bit"},
     AlertFacts(owner="daemonset/fluent-bit"), RestartOp(target="daemonset", name="fluent-bit", namespace="logging"),
     "daemonset/fluent-bit"),
    ("KubeDeploymentReplicasMismatch", {**KSM, "namespace": "prod", "deployment": "api"}, NO_FACTS,
     RestartOp(target="deployment", name="api", namespace="prod"), "restart deployment/api"),
    ("KubeStatefulSetReplicasMismatch", {**KSM, "namespace": "data", "statefulset": "postgres"}, NO_FACTS,
     RestartOp(target="statefulset", name="postgres", namespace="data"), "restart statefulset/postgres"),
    ("KubeDaemonSetRolloutStuck", {**KSM, "namespace": "monitoring", "daemonset": "node-exporter"}, NO_FACTS,
     RestartOp(target="daemonset", name="node-exporter", namespace="monitoring"), "daemonset/node-exporter"),
    ("KubeDeploymentRolloutStuck", {**KSM, "namespace": "prod", "deployment": "checkout"}, NO_FACTS,
     RollbackOp(name="checkout", namespace="prod"), "roll deployment/checkout back"),
    ("KubeDeploymentGenerationMismatch", {**KSM, "namespace": "prod", "deployment": "checkout"}, NO_FACTS,
     RollbackOp(name="checkout", namespace="prod"), "roll deployment/checkout back"),
    ("KubeHpaMaxedOut", {**KSM, "namespace": "prod", "horizontalpodautoscaler": "api"},
     AlertFacts(current_replicas=4), ScaleOp(target="deployment", name="api", namespace="prod", replicas=6),
     "4 → 6 replicas"),
    ("KubeHpaMaxedOut", {**KSM, "namespace": "prod", "horizontalpodautoscaler": "api-hpa", "deployment": "api"},
     AlertFacts(current_replicas=10), ScaleOp(target="deployment", name="api", namespace="prod", replicas=15),
     "10 → 15 replicas"),
    ("CPUThrottlingHigh", {"namespace": "prod", "pod": "api-7d9f-x2x4z", "container": "api", "severity": "info"},
     AlertFacts(owner="deployment/api", current_replicas=3),
     ScaleOp(target="deployment", name="api", namespace="prod", replicas=5), "CPU-throttled"),
    ("CPUThrottlingHigh", {"namespace": "data", "pod": "postgres-1", "container": "postgres"},
     AlertFacts(owner="statefulset/postgres", current_replicas=1),
     ScaleOp(target="statefulset", name="postgres", namespace="data", replicas=2), "1 → 2 replicas"),
    ("KubeNodeNotReady", {**KSM, "namespace": "monitoring", "node": "ip-10-0-1-23.ec2.internal"}, NO_FACTS,
     CordonOp(name="ip-10-0-1-23.ec2.internal"), "cordon the node"),
    ("KubeNodeUnreachable", {**KSM, "node": "node-1"}, NO_FACTS, CordonOp(name="node-1"), "node-1"),
]


def assert_on_allow_list(proposal: RuleProposal) -> Operation:
    op = parse_operation(proposal.action)
    assert isinstance(op, RestartOp | ScaleOp | RollbackOp | CordonOp)
    return op


@pytest.mark.parametrize(("alert", "labels", "facts", "expected", "why"), BUILTINS,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BUILTINS)])
def test_builtin_rules(alert: str, labels: dict[str, str], facts: AlertFacts, expected: Operation, why: str) -> None:
    proposal = propose_by_rules(alert, labels, facts)
    assert proposal is not None
    assert assert_on_allow_list(proposal) == expected
    assert proposal.rule == f"builtin:{alert}"
    assert why in proposal.rationale
    assert proposal.rationale.startswith(alert)
    assert "\n" not in proposal.rationale


def test_every_builtin_is_covered_by_the_table() -> None:
    assert set(BUILTIN_RULES) == {b[0] for b in BUILTINS}


def test_unknown_alert_has_no_rule() -> None:
    assert propose_by_rules("Watchdog", {"severity": "none"}, NO_FACTS) is None
    assert propose_by_rules("KubeJobFailed", {"namespace": "ops", "job_name": "backup-1"}, NO_FACTS) is None


@pytest.mark.parametrize(
    ("alert", "labels", "facts"),
    [
        # A bare pod (no owner), or one owned by something that cannot be restarted.
        ("KubePodCrashLooping", {"namespace": "prod", "pod": "debug"}, NO_FACTS),
        ("KubePodCrashLooping", {"namespace": "prod", "pod": "backup-x2x4z"}, AlertFacts(owner="job/backup")),
        ("KubePodNotReady", {"namespace": "prod", "pod": "api-1"}, AlertFacts(owner="replicaset/api-7d9f")),
        ("KubeContainerWaiting", {"namespace": "prod", "pod": "api-1"}, AlertFacts(owner="deployment/")),
        # Missing labels.
        ("KubePodCrashLooping", {"pod": "api-7d9f-x2x4z"}, AlertFacts(owner="deployment/api")),
        ("KubeDeploymentReplicasMismatch", {"namespace": "prod"}, NO_FACTS),
        ("KubeDeploymentReplicasMismatch", {"deployment": "api"}, NO_FACTS),
        ("KubeStatefulSetReplicasMismatch", {"namespace": "data", "deployment": "postgres"}, NO_FACTS),
        ("KubeDaemonSetRolloutStuck", {"namespace": "monitoring"}, NO_FACTS),
        ("KubeDeploymentRolloutStuck", {"namespace": "prod"}, NO_FACTS),
        ("KubeHpaMaxedOut", {"namespace": "prod"}, AlertFacts(current_replicas=3)),
        ("KubeNodeNotReady", {"namespace": "monitoring"}, NO_FACTS),
        # Unknown current replicas: no guess at a number.
        ("KubeHpaMaxedOut", {"namespace": "prod", "horizontalpodautoscaler": "api"}, NO_FACTS),
        ("CPUThrottlingHigh", {"namespace": "prod", "pod": "api-1"}, AlertFacts(owner="deployment/api")),
        # A DaemonSet cannot be scaled.
        ("CPUThrottlingHigh", {"namespace": "prod", "pod": "x-1"}, AlertFacts(owner="daemonset/x", current_replicas=3)),
        # Invalid names: the rule yields nothing.
        ("KubeDeploymentReplicasMismatch", {"namespace": "prod", "deployment": "API"}, NO_FACTS),
        ("KubeDeploymentReplicasMismatch", {"namespace": "prod", "deployment": "api -n kube-system"}, NO_FACTS),
        ("KubeDeploymentReplicasMismatch", {"namespace": "Prod", "deployment": "api"}, NO_FACTS),
        ("KubeDeploymentReplicasMismatch", {"namespace": "a.b", "deployment": "api"}, NO_FACTS),
        ("KubeNodeNotReady", {"node": "node-1; rm -rf /"}, NO_FACTS),
        # A trailing newline is not part of a valid name (`$` would have let it through).
        ("KubeDeploymentReplicasMismatch", {"namespace": "prod", "deployment": "api\n"}, NO_FACTS),
        ("KubeDeploymentReplicasMismatch", {"namespace": "prod\n", "deployment": "api"}, NO_FACTS),
        ("KubeNodeNotReady", {"node": "node-1\n"}, NO_FACTS),
        ("KubePodCrashLooping", {"namespace": "prod"}, AlertFacts(owner="deployment/api --all")),
        ("KubeHpaMaxedOut", {"namespace": "prod", "horizontalpodautoscaler": "api", "deployment": "Bad"},
         AlertFacts(current_replicas=3)),
    ],
)
def test_no_proposal(alert: str, labels: dict[str, str], facts: AlertFacts) -> None:
    assert propose_by_rules(alert, labels, facts) is None


@pytest.mark.parametrize(
    ("current", "cap", "expected"),
    [(0, 50, 1), (1, 50, 2), (2, 50, 3), (3, 50, 5), (4, 50, 6), (5, 50, 8), (10, 50, 15), (40, 50, 50),
     (34, 50, 50), (49, 50, 50), (50, 50, None), (60, 50, None), (3, 4, 4), (0, 0, None)],
)
def test_scale_up_by_half_capped(current: int, cap: int, expected: int | None) -> None:
    assert scale_up_target(current, cap) == expected


def test_scale_respects_the_policy_cap() -> None:
    labels = {"namespace": "prod", "horizontalpodautoscaler": "api"}
    capped = propose_by_rules("KubeHpaMaxedOut", labels, AlertFacts(current_replicas=8), max_replicas=10)
    assert capped is not None and parse_operation(capped.action) == ScaleOp(name="api", target="deployment",
                                                                            namespace="prod", replicas=10)
    assert "policy cap 10" in capped.rationale
    assert propose_by_rules("KubeHpaMaxedOut", labels, AlertFacts(current_replicas=10), max_replicas=10) is None
    assert propose_by_rules("CPUThrottlingHigh", {"namespace": "prod", "pod": "api-1"},
                            AlertFacts(owner="deployment/api", current_replicas=50)) is None


def test_policy_rule_overrides_the_builtin() -> None:
    rules = (RuleSpec(alert="KubePodCrashLooping", action="delete pod {pod} -n {namespace}", risk=Risk.high,
                      reason="A crash-looping {pod} is usually a stuck node mount; delete just that pod"),)
    labels = {"namespace": "prod", "pod": "api-7d9f-x2x4z"}
    proposal = propose_by_rules("KubePodCrashLooping", labels, AlertFacts(owner="deployment/api"),
                                policy_rules=rules)
    assert proposal == RuleProposal(
        action="delete pod api-7d9f-x2x4z -n prod", risk=Risk.high,
        rationale="A crash-looping api-7d9f-x2x4z is usually a stuck node mount; delete just that pod",
        rule="policy:KubePodCrashLooping")


def test_policy_rules_first_match_wins_and_unmatched_fall_through() -> None:
    rules = (
        RuleSpec(alert="OtherAlert", action="cordon {node}"),
        RuleSpec(alert="KubeDeploymentReplicasMismatch", action="rollout restart deployment/{missing} -n {namespace}"),
        RuleSpec(alert="KubeDeploymentReplicasMismatch", action="scale deployment/{deployment} --replicas=2 -n "
                                                                "{namespace}"),
        RuleSpec(alert="KubeDeploymentReplicasMismatch", action="rollout undo deployment/{deployment} -n {namespace}"),
    )
    labels = {"namespace": "prod", "deployment": "api"}
    proposal = propose_by_rules("KubeDeploymentReplicasMismatch", labels, NO_FACTS, policy_rules=rules)
    assert proposal is not None
    assert proposal.action == "scale deployment/api --replicas=2 -n prod"
    assert proposal.rule == "policy:KubeDeploymentReplicasMismatch"
    assert proposal.rationale == "KubeDeploymentReplicasMismatch on prod: scale deployment/api --replicas=2 -n prod"
    # When no policy rule can be filled in, the built-in still answers.
    fallback = propose_by_rules("KubeDeploymentReplicasMismatch", labels, NO_FACTS, policy_rules=rules[:2])
    assert fallback is not None and fallback.rule == "builtin:KubeDeploymentReplicasMismatch"


def test_policy_rule_for_an_alert_without_builtin() -> None:
    rules = (RuleSpec(alert="MyQueueBacklog", action="scale deployment/{consumer} to 12 in {namespace}",
                      risk=Risk.medium),)
    proposal = propose_by_rules("MyQueueBacklog", {"namespace": "jobs", "consumer": "mailer"}, NO_FACTS,
                                policy_rules=rules)
    assert proposal is not None and proposal.risk is Risk.medium
    assert parse_operation(proposal.action) == ScaleOp(target="deployment", name="mailer", namespace="jobs",
                                                       replicas=12)
    assert propose_by_rules("MyQueueBacklog", {"namespace": "jobs"}, NO_FACTS, policy_rules=rules) is None


@pytest.mark.parametrize(
    "action",
    [
        "kubectl exec -it {pod} -n {namespace} -- sh",  # off the allow-list
        "delete deployment/{deployment} -n {namespace}",
        "scale deployment/{deployment} --replicas=500 -n {namespace}",  # above the cap
        "rollout restart deployment/{deployment}; rm -rf / -n {namespace}",
    ],
)
def test_policy_rule_off_the_allow_list_never_matches(action: str) -> None:
    rules = (RuleSpec(alert="KubeDeploymentReplicasMismatch", action=action),)
    labels = {"namespace": "prod", "deployment": "api", "pod": "api-1"}
    proposal = propose_by_rules("KubeDeploymentReplicasMismatch", labels, NO_FACTS, policy_rules=rules)
    assert proposal is not None and proposal.rule == "builtin:KubeDeploymentReplicasMismatch"


_label_values = st.one_of(
    # Valid names often enough that rules do propose, so the check below has something to check.
    st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,12}[a-z0-9])?", fullmatch=True),
    st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,12}[a-z0-9])?", fullmatch=True),
    st.text(max_size=40),
    st.text(alphabet="abcXYZ019-._/ ;|&$`'\"\\{}<>*\n", max_size=30),
    st.sampled_from(["api", "prod", "node-1", "API", "api -n kube-system", "api --all", "a/b", "kube-system",
                     "-api", "api-", "a" * 254, "x.y", "", " ", "deployment/api"]),
)
_labels = st.fixed_dictionaries(
    {},
    optional={key: _label_values for key in ("namespace", "pod", "deployment", "statefulset", "daemonset",
                                             "horizontalpodautoscaler", "node", "container", "app")},
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alert=st.sampled_from([*BUILTIN_RULES, "Custom", "Other"]),
    labels=_labels,
    owner=st.one_of(st.none(), st.builds(lambda k, v: f"{k}/{v}",
                                         st.sampled_from(["deployment", "statefulset", "daemonset", "job", "Pod"]),
                                         _label_values)),
    replicas=st.one_of(st.none(), st.integers(min_value=0, max_value=200)),
    template=st.sampled_from([
        "rollout restart deployment/{app} -n {namespace}",
        "restart statefulset {statefulset} in {namespace}",
        "scale deployment/{deployment} --replicas=3 -n {namespace}",
        "cordon {node}",
        "delete pod {pod} -n {namespace}",
        "rollout restart {app} -n {namespace}",
    ]),
)
def test_arbitrary_labels_never_escape_the_allow_list(alert: str, labels: dict[str, str], owner: str | None,
                                                      replicas: int | None, template: str) -> None:
    rules = (RuleSpec(alert="Custom", action=template),)
    facts = AlertFacts(owner=owner, current_replicas=replicas)
    proposal = propose_by_rules(alert, labels, facts, policy_rules=rules, max_replicas=50)
    if proposal is None:
        return
    op = parse_operation(proposal.action)  # never raises: every proposal parses
    values = set(labels.values()) | ({owner.partition("/")[2]} if owner else set())
    # The target and namespace are exactly label (or owner) values, never pieces of them.
    assert op.name in values
    if op.namespace is not None:
        assert op.namespace == labels.get("namespace") or op.namespace in values
    if isinstance(op, ScaleOp):
        assert op.replicas <= 50


def test_proposal_grammar_names_every_form_and_the_none_answer() -> None:
    grammar = proposal_grammar()
    assert ACCEPTED_FORMS_TEXT in grammar
    assert "exactly one action line" in grammar
    assert "NONE" in grammar
    with pytest.raises(ParseError):
        parse_operation("NONE")
