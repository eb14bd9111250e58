"""The decision manager: what to propose for a new incident, from three tracks in order.

1. the best approved playbook whose trigger is at least the policy's similarity threshold;
2. the LLM advisor, only when one is configured, and only if its answer parses;
3. the built-in expert rules (and the policy's `[[rules]]`).

Whatever a track proposes becomes an ordinary approval request: nothing runs unsigned.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from pydantic import BaseModel, ConfigDict

from core.domain.approvals import Proposal
from core.domain.cluster import ClusterError
from core.domain.clusters import UnknownCluster, alert_cluster, default_cluster
from core.domain.correlation import replicaset_of
from core.domain.incidents import Incident
from core.domain.operations import Operation, parse_operation
from core.domain.playbook_reach import CLUSTER_KEY, crossing_note, reach
from core.domain.playbooks import Playbook, PlaybookStatus, fill
from core.domain.policy import Policy, Risk
from core.domain.rules import AlertFacts, proposal_grammar, propose_by_rules
from core.domain.similarity import similarity
from core.errors import ParseError
from core.ports import Advisor, Cluster

log = structlog.get_logger(__name__)


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: str | None
    proposal: Proposal
    risk: Risk | None = None

    @property
    def operation(self) -> Operation | None:
        return parse_operation(self.action) if self.action else None


class DecisionManager:
    def __init__(self, *, policy: Policy, cluster: Cluster, advisor: Advisor | None = None) -> None:
        self._policy = policy
        self._cluster = cluster
        self._advisor = advisor
        # A pod's owner never changes, and a storm names the same pods again: asked once each.
        self._owners: dict[tuple[str, str, str], str | None] = {}

    async def owner_of(self, alert_name: str, labels: dict[str, str]) -> str | None:
        """The workload owning the alert's pod (`deployment/api`), read from the cluster; None if unknown.

        Only when the `pod` label is the alert's subject: on kube-state-metrics' workload alerts it is
        the exporter's own pod, and those alerts name their workload in labels.
        """
        pod = labels.get("pod")
        if not pod or not (alert_name in POD_SCOPED_ALERTS
                           or not any(labels.get(kind) for kind in ("deployment", "statefulset", "daemonset"))):
            return None
        namespace = labels.get("namespace", "default")
        try:  # the pod is read on the alert's own cluster (an unknown one was refused at intake)
            cluster = alert_cluster(labels, self._policy.clusters, self._policy.alerts.cluster_label)
        except UnknownCluster:
            return None
        # The pods of one ReplicaSet have one owner: a storm over 300 pods of a Deployment asks the cluster
        # about the first pod only (a pod name is its ReplicaSet's name plus a random suffix).
        cached = (cluster or "", namespace, replicaset_of(pod) or pod)
        if cached in self._owners:
            return self._owners[cached]
        try:
            op = parse_operation(f"delete pod {pod} -n {namespace}").model_copy(update={"cluster": cluster})
            facts = await self._cluster.inspect(op)
        except (ClusterError, ParseError) as exc:
            log.info("decision.owner_unavailable", pod=pod, namespace=namespace, error=str(exc))
            return None  # not cached: the cluster may answer next time
        owner = facts.controller if facts.exists else None
        if len(self._owners) >= OWNER_CACHE:
            self._owners.clear()
        self._owners[cached] = owner
        return owner

    def best_playbook(self, incident: Incident, playbooks: Sequence[Playbook]) -> tuple[Playbook, float] | None:
        threshold = self._policy.playbooks.similarity
        best: tuple[Playbook, float] | None = None
        cluster, default = self._clusters(incident)
        for playbook in playbooks:
            trigger = reach(playbook, cluster, default, across=self._policy.playbooks.across_clusters)
            if playbook.status is not PlaybookStatus.approved or trigger is None:
                continue
            labels = incident.labels if trigger is playbook.trigger else _without_cluster(incident.labels)
            score = similarity(incident.alert_name or incident.title, labels, incident.symptom, trigger)
            if score >= threshold and (best is None or score > best[1]):
                best = (playbook, score)
        return best

    def _clusters(self, incident: Incident) -> tuple[str | None, str | None]:
        """The incident's cluster and the default one (both None without [clusters])."""
        clusters = self._policy.clusters
        try:
            cluster = alert_cluster(incident.labels, clusters, self._policy.alerts.cluster_label)
        except UnknownCluster:
            cluster = None  # refused at intake; nothing is proposed for it
        return cluster, (default_cluster(clusters) if clusters else None)

    async def decide(self, incident: Incident, playbooks: Sequence[Playbook]) -> Decision:
        match = self.best_playbook(incident, playbooks)
        if match is not None:
            playbook, score = match
            operation = fill(playbook.template, incident.labels)
            note = crossing_note(playbook, *self._clusters(incident))
            if operation is not None and note:  # learned on another cluster: it runs on the alert's own
                operation = operation.model_copy(update={"cluster": None})
            if operation is not None:
                return Decision(
                    action=operation.command(),
                    risk=Risk(playbook.risk) if playbook.risk and playbook.risk in Risk.__members__ else None,
                    proposal=Proposal(
                        track="playbook", playbook_id=playbook.id, similarity=round(score, 3),
                        rationale=f"{playbook.id} fixed {playbook.source_incident} "
                                  f"(effectiveness {playbook.effectiveness}/5{note})",
                    ),
                )
            log.info("decision.playbook_unfillable", playbook_id=playbook.id, incident_id=incident.id)
        if self._advisor is not None:
            answer = await self._advisor.propose(incident, proposal_grammar())
            if answer is not None:
                try:
                    operation = parse_operation(answer.action)
                except ParseError:
                    log.warning("decision.llm_outside_allow_list", incident_id=incident.id)
                else:
                    return Decision(action=operation.command(), proposal=Proposal(
                        track="llm", rationale=answer.rationale[:300] or "suggested by the LLM advisor"))
        facts = await self._facts(incident)
        ruled = propose_by_rules(
            incident.alert_name or "", incident.labels, facts, policy_rules=self._policy.rules,
            max_replicas=self._policy.requests.max_replicas,
        )
        if ruled is not None:
            try:
                operation = parse_operation(ruled.action)
            except ParseError:
                log.error("decision.rule_outside_allow_list", rule=ruled.rule)
            else:
                return Decision(action=operation.command(), risk=ruled.risk,
                                proposal=Proposal(track="rules", rationale=f"{ruled.rule}: {ruled.rationale}"))
        return Decision(action=None, proposal=Proposal(
            track="none", rationale="no playbook, advisor or rule had a proposal; a human has to decide"))

    async def _facts(self, incident: Incident) -> AlertFacts:
        """The workload behind an alert (a pod's owner) and its replicas, read from the cluster."""
        labels = incident.labels
        namespace = labels.get("namespace", "default")
        owner: str | None = None
        try:
            # Label values come from the alert: they go through the parser before reaching the cluster.
            # Only pod-scoped alerts name the workload's pod; on the others `pod` is the exporter's own.
            if "pod" in labels and incident.alert_name in POD_SCOPED_ALERTS:
                pod = parse_operation(f"delete pod {labels['pod']} -n {namespace}")
                facts = await self._cluster.inspect(pod)
                owner = facts.controller if facts.exists else None
            # The pod may be gone already (a storm outlives its pods): the workload the correlation found stands in.
            owner = owner or (incident.workload if incident.alert_name in POD_SCOPED_ALERTS else None)
            target = _replica_target(labels, owner)
            replicas = None
            # Only the scaling rules need the current replica count.
            if target is not None and incident.alert_name in SCALING_ALERTS:
                inspected = await self._cluster.inspect(parse_operation(f"rollout restart {target} -n {namespace}"))
                replicas = inspected.replicas if inspected.exists else None
        except (ClusterError, ParseError) as exc:
            log.warning("decision.facts_unavailable", incident_id=incident.id, error=str(exc))
            return AlertFacts(owner=owner, current_replicas=None)
        return AlertFacts(owner=owner, current_replicas=replicas)


OWNER_CACHE = 10_000
SCALING_ALERTS = frozenset({"KubeHpaMaxedOut", "CPUThrottlingHigh"})
POD_SCOPED_ALERTS = frozenset({
    "KubePodCrashLooping", "KubePodNotReady", "KubeContainerWaiting", "CPUThrottlingHigh",
})


def _replica_target(labels: dict[str, str], owner: str | None) -> str | None:
    if owner and owner.split("/")[0] in ("deployment", "statefulset", "daemonset"):
        return owner
    for kind in ("deployment", "statefulset"):
        if labels.get(kind):
            return f"{kind}/{labels[kind]}"
    hpa = labels.get("horizontalpodautoscaler")
    return f"deployment/{hpa}" if hpa else None


def _without_cluster(labels: dict[str, str]) -> dict[str, str]:
    """The incident's labels compared with a playbook offered across clusters: without the cluster, which alone
    would veto it."""
    return {key: value for key, value in labels.items() if key != CLUSTER_KEY}
