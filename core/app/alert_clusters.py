"""Which cluster an alert is about (`[alerts] cluster_label`), for the incident service's intake.

An alert naming a cluster signoff does not serve is recorded with its own outcome (an error naming the
clusters) and proposes nothing; the other alerts of its notification go on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import structlog

from core.app.alert_outcomes import AlertOutcome
from core.domain.alerts import Alert, AlertStatus
from core.domain.clusters import UnknownCluster, alert_cluster, with_cluster_label
from core.domain.policy import Policy

log = structlog.get_logger(__name__)


def cluster_of(labels: Mapping[str, str], policy: Policy) -> str | None:
    """The alert's cluster (None: the default one); an unknown one counts as none here (refused earlier)."""
    try:
        return alert_cluster(labels, policy.clusters, policy.alerts.cluster_label)
    except UnknownCluster:
        return None


def elsewhere(alerts: Sequence[Alert], policy: Policy) -> Iterator[AlertOutcome | None]:
    """Per alert: its outcome when it names an unknown cluster (firing ones only), else None."""
    for alert in alerts:
        if alert.status is not AlertStatus.firing:
            yield None
            continue
        try:
            alert_cluster(alert.labels, policy.clusters, policy.alerts.cluster_label)
        except UnknownCluster as exc:
            log.warning("alert.unknown_cluster", fingerprint=alert.fingerprint, alert=alert.name)
            yield AlertOutcome(fingerprint=alert.fingerprint, status=alert.status, error=exc.message)
            continue
        yield None


def per_cluster(labels: Mapping[str, str], policy: Policy) -> dict[str, str]:
    """The labels the correlation key reads: incidents are per cluster."""
    return with_cluster_label(labels, policy.alerts.cluster_label)
