"""Which cluster's playbooks an incident may be offered (`[playbooks] across_clusters`).

Incidents and playbooks are per cluster: a playbook learned on one cluster (its trigger's `cluster` label, else
the default cluster) is proposed for an alert on another only when the policy says `across_clusters = true`,
and then it is compared without the cluster (which would otherwise veto it as a different workload) and the
card says where it was learned, next to its track, similarity and score.
"""

from __future__ import annotations

from core.domain.playbooks import Playbook, Trigger

CLUSTER_KEY = "cluster"


def learned_on(playbook: Playbook, default: str | None) -> str | None:
    """The cluster a playbook was learned on (None: the one cluster of a policy without [clusters])."""
    return playbook.trigger.labels.get(CLUSTER_KEY) or default


def reach(playbook: Playbook, cluster: str | None, default: str | None, *, across: bool) -> Trigger | None:
    """The trigger to compare an incident on `cluster` with, or None when the playbook may not be offered there.
    A playbook from another cluster is compared as if learned here (its cluster label left out), only when
    `across`."""
    where = learned_on(playbook, default)
    here = cluster or default
    if where == here:
        return playbook.trigger
    if not across:
        return None
    labels = {key: value for key, value in playbook.trigger.labels.items() if key != CLUSTER_KEY}
    return playbook.trigger.model_copy(update={"labels": labels})


def crossing_note(playbook: Playbook, cluster: str | None, default: str | None) -> str:
    """`; learned on cluster eu-1` when the playbook comes from another cluster than the incident's, else ``."""
    where = learned_on(playbook, default)
    return f"; learned on cluster {where}" if where is not None and where != (cluster or default) else ""
