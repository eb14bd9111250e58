"""Expert rules: the last proposal track, for common kube-prometheus alerts (docs/design.md §1 step 9).

A rule turns an alert (name, labels, and the few facts the caller looked up in the cluster) into
one action text on the allow-list. Rules from the policy file (`[[rules]]`) come first, in file
order, and the first that matches wins; then the built-ins below. Every proposal is checked with
`parse_operation` before it is returned, and every label value that goes into an action must be
a plain Kubernetes name, so alert labels can never smuggle anything past the allow-list: a rule
whose labels do not fit yields no proposal rather than a crash or an odd action.

Nothing here executes anything: a proposal becomes an ordinary approval request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from core.domain.operations import ACCEPTED_FORMS_TEXT, parse_operation
from core.domain.policy import Risk, RuleSpec, check_replicas
from core.domain.templates import fill_template, fill_text, plain_name
from core.errors import ParseError, PolicyViolation

__all__ = [
    "BUILTIN_RULES",
    "AlertFacts",
    "RuleProposal",
    "proposal_grammar",
    "propose_by_rules",
    "scale_up_target",
]


class RuleProposal(BaseModel):
    """What a rule proposes: an action text that parses, its stated risk, and a sentence for the card."""

    model_config = ConfigDict(frozen=True)

    action: str
    risk: Risk | None = None
    rationale: str
    rule: str


class AlertFacts(BaseModel):
    """What the caller learnt from the cluster about the alert's target before asking the rules."""

    model_config = ConfigDict(frozen=True)

    # `kind/name` of the workload that owns the alert's pod (through the ReplicaSet for a Deployment).
    owner: str | None = None
    current_replicas: int | None = Field(default=None, ge=0)


# A value put into an action must be one plain name (see core.domain.templates); a namespace
# is one DNS label. The parser checks the whole text again afterwards.
# Used with fullmatch: `$` would also match before a trailing newline.
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_RESTARTABLE = ("deployment", "statefulset", "daemonset")
_SCALABLE = ("deployment", "statefulset")


def _name(labels: Mapping[str, str], key: str) -> str | None:
    return plain_name(labels.get(key))


def _namespace(labels: Mapping[str, str]) -> str | None:
    value = labels.get("namespace")
    if value is None or len(value) > 63 or not _NAMESPACE.fullmatch(value):
        return None
    return value


def _owner(facts: AlertFacts, kinds: tuple[str, ...]) -> tuple[str, str] | None:
    """The owner as (kind, name) when it is one of `kinds` and a valid name, else None."""
    if facts.owner is None:
        return None
    kind, _, name = facts.owner.strip().partition("/")
    kind = kind.lower()
    if kind not in kinds or plain_name(name) is None:
        return None
    return kind, name


def scale_up_target(current: int, max_replicas: int) -> int | None:
    """Scale up by half, at least by one, capped at the policy's maximum; None when already at the cap."""
    if current >= max_replicas:
        return None
    return min(max(current + 1, math.ceil(current * 1.5)), max_replicas)


def _where(labels: Mapping[str, str]) -> str:
    """`prod/api-7d9f-x2x4z`, `prod` or `node-1`: the alert's subject, for the rationale."""
    namespace = _namespace(labels)
    subject = next((v for k in ("pod", "node") if (v := _name(labels, k)) is not None), None)
    parts = [p for p in (namespace, subject) if p]
    return "/".join(parts) if parts else "the cluster"


_Builtin = Callable[[str, Mapping[str, str], AlertFacts, int], tuple[str, str] | None]


def _restart_owner(alert: str, labels: Mapping[str, str], facts: AlertFacts, _max: int) -> tuple[str, str] | None:
    namespace = _namespace(labels)
    owner = _owner(facts, _RESTARTABLE)
    # A bare pod (or one owned by a Job) has nothing to restart; deleting it is for a human to decide.
    if namespace is None or owner is None:
        return None
    kind, name = owner
    return (f"rollout restart {kind}/{name} -n {namespace}",
            f"{alert} on {_where(labels)}: restart its owner {kind}/{name}")


def _restart_labelled(kind: str) -> _Builtin:
    def rule(alert: str, labels: Mapping[str, str], _facts: AlertFacts, _max: int) -> tuple[str, str] | None:
        namespace, name = _namespace(labels), _name(labels, kind)
        if namespace is None or name is None:
            return None
        return (f"rollout restart {kind}/{name} -n {namespace}",
                f"{alert} on {namespace}/{name}: restart {kind}/{name} to replace its stuck pods")

    return rule


def _undo_deployment(alert: str, labels: Mapping[str, str], _facts: AlertFacts, _max: int) -> tuple[str, str] | None:
    namespace, name = _namespace(labels), _name(labels, "deployment")
    if namespace is None or name is None:
        return None
    return (f"rollout undo deployment/{name} -n {namespace}",
            f"{alert} on {namespace}/{name}: the new revision is not rolling out; roll deployment/{name} back")


def _scale(alert: str, namespace: str, kind: str, name: str, facts: AlertFacts, max_replicas: int,
           why: str) -> tuple[str, str] | None:
    if facts.current_replicas is None:
        return None
    target = scale_up_target(facts.current_replicas, max_replicas)
    if target is None:
        return None
    return (f"scale {kind}/{name} --replicas={target} -n {namespace}",
            f"{alert} on {namespace}/{name}: {why}; scale {kind}/{name} up by half, "
            f"{facts.current_replicas} → {target} replicas (policy cap {max_replicas})")


def _hpa_maxed(alert: str, labels: Mapping[str, str], facts: AlertFacts, max_replicas: int) -> tuple[str, str] | None:
    namespace = _namespace(labels)
    # kube-prometheus names the HPA, not its target; the HPA is conventionally named after its
    # Deployment, and a `deployment` label (added by relabelling) wins when present.
    name = _name(labels, "deployment") if "deployment" in labels else _name(labels, "horizontalpodautoscaler")
    if namespace is None or name is None:
        return None
    return _scale(alert, namespace, "deployment", name, facts, max_replicas, "the autoscaler is at its maximum")


def _cpu_throttling(alert: str, labels: Mapping[str, str], facts: AlertFacts,
                    max_replicas: int) -> tuple[str, str] | None:
    namespace = _namespace(labels)
    owner = _owner(facts, _SCALABLE)
    if namespace is None or owner is None:
        return None
    kind, name = owner
    return _scale(alert, namespace, kind, name, facts, max_replicas, "its pods are CPU-throttled")


def _cordon(alert: str, labels: Mapping[str, str], _facts: AlertFacts, _max: int) -> tuple[str, str] | None:
    node = _name(labels, "node")
    if node is None:
        return None
    return f"cordon {node}", f"{alert} on {node}: cordon the node so no new pods are scheduled onto it"


BUILTIN_RULES: dict[str, _Builtin] = {
    "KubePodCrashLooping": _restart_owner,
    "KubePodNotReady": _restart_owner,
    "KubeContainerWaiting": _restart_owner,
    "KubeDeploymentReplicasMismatch": _restart_labelled("deployment"),
    "KubeStatefulSetReplicasMismatch": _restart_labelled("statefulset"),
    "KubeDaemonSetRolloutStuck": _restart_labelled("daemonset"),
    "KubeDeploymentRolloutStuck": _undo_deployment,
    "KubeDeploymentGenerationMismatch": _undo_deployment,
    "KubeHpaMaxedOut": _hpa_maxed,
    "CPUThrottlingHigh": _cpu_throttling,
    "KubeNodeNotReady": _cordon,
    "KubeNodeUnreachable": _cordon,
}


def _valid(action: str, max_replicas: int) -> bool:
    try:
        check_replicas(parse_operation(action), max_replicas)
    except (ParseError, PolicyViolation):
        return False
    return True


def propose_by_rules(
    alert_name: str,
    labels: Mapping[str, str],
    facts: AlertFacts,
    *,
    policy_rules: Sequence[RuleSpec] = (),
    max_replicas: int = 50,
) -> RuleProposal | None:
    """The first matching policy rule's proposal, else the built-in rule's, else None."""
    for spec in policy_rules:
        if spec.alert != alert_name:
            continue
        action = fill_template(spec.action, labels)
        # A policy rule that cannot be filled in, or fills in to something off the allow-list (or
        # above the replica cap), does not match: the next rule, or a built-in, gets its chance.
        if action is None or not _valid(action, max_replicas):
            continue
        reason = fill_text(spec.reason, labels) if spec.reason else f"{alert_name} on {_where(labels)}: {action}"
        return RuleProposal(action=action, risk=spec.risk, rationale=reason, rule=f"policy:{spec.alert}")
    builtin = BUILTIN_RULES.get(alert_name)
    if builtin is None:
        return None
    found = builtin(alert_name, labels, facts, max_replicas)
    if found is None:
        return None
    action, rationale = found
    if not _valid(action, max_replicas):
        return None
    return RuleProposal(action=action, risk=None, rationale=rationale, rule=f"builtin:{alert_name}")


def proposal_grammar() -> str:
    """What an advisor is told it may answer: one action on the allow-list, or NONE."""
    return (
        "Answer with exactly one action line, or NONE when none of the operations below would help.\n"
        "The action must be one of the forms below, with the alert's real names filled in. Names are "
        "Kubernetes names (lower-case letters, digits, `-` and `.`). Nothing else is ever run: no exec, "
        "apply, edit, patch, label selectors, `--all`, pipes or shell characters, and `delete` only "
        "for a single pod.\n"
        f"{ACCEPTED_FORMS_TEXT}"
    )
