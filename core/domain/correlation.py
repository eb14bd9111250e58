"""Which open incident an alert belongs to: the correlation key (docs/incidents.md explains it for people).

    key = alert name | namespace | workload

The workload, best source first:
1. the pod's owner read from the cluster (a Deployment through its ReplicaSet, a StatefulSet, a DaemonSet);
2. the alert's workload labels: `deployment`, `statefulset`, `daemonset`;
3. the ReplicaSet naming pattern of the `pod` label: `api-7c9f8d-x1` → `deployment/api`;
   a StatefulSet's ordinal: `db-0` → `statefulset/db`;
4. otherwise the alert's other identifying labels (node, service, job, PVC...) stand for the workload,
   so an alert about node-1 never joins one about node-2.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.domain.similarity import _RS_HASH, WORKLOAD_KEYS

WORKLOAD_KINDS = ("deployment", "statefulset", "daemonset")
# A Deployment's pod is `<deployment>-<ReplicaSet hash>-<random suffix>`; the suffix is leniently 1-5
# characters because hand-written examples shorten it (`api-7c9f8d-x1`).
_REPLICASET_POD = re.compile(rf"^(?P<replicaset>(?P<workload>[a-z0-9][a-z0-9.-]*?)-{_RS_HASH})-[a-z0-9]{{1,5}}$")
_STATEFUL_POD = re.compile(r"^(?P<workload>[a-z0-9][a-z0-9.-]*?)-\d{1,4}$")
MAX_KEY = 300


def workload_of(labels: Mapping[str, str], owner: str | None = None) -> str | None:
    """`deployment/api`, from the cluster's answer, the labels or the pod's name; None when nothing names one."""
    if owner and owner.split("/", 1)[0] in (*WORKLOAD_KINDS, "replicaset", "job"):
        return owner
    for kind in WORKLOAD_KINDS:
        value = (labels.get(kind) or "").strip().lower()
        if value:
            return f"{kind}/{value}"
    pod = (labels.get("pod") or "").strip().lower()
    if pod:
        match = _REPLICASET_POD.match(pod)
        if match:
            return f"deployment/{match['workload']}"
        match = _STATEFUL_POD.match(pod)
        if match:
            return f"statefulset/{match['workload']}"
    return None


def replicaset_of(pod: str) -> str | None:
    """`api-7c9f8d` for `api-7c9f8d-x1`: a ReplicaSet names its pods `<its name>-<random suffix>`."""
    match = _REPLICASET_POD.match(pod.strip().lower())
    return match["replicaset"] if match else None


def correlation_key(alert_name: str, labels: Mapping[str, str], workload: str | None) -> str:
    """Alerts with equal keys are the same problem and join one open incident."""
    namespace = (labels.get("namespace") or "").strip().lower()
    if workload is None:
        others = [f"{key}={labels[key].strip().lower()}" for key in ("cluster", *WORKLOAD_KEYS)
                  if key != "pod" and labels.get(key, "").strip()]
        if not others and labels.get("pod", "").strip():
            others = [f"pod={labels['pod'].strip().lower()}"]
        if not others and labels.get("service", "").strip():
            others = [f"service={labels['service'].strip().lower()}"]
        workload = ",".join(others)
    elif labels.get("cluster", "").strip():
        workload = f"{workload},cluster={labels['cluster'].strip().lower()}"
    return f"{alert_name.strip()}|{namespace}|{workload}"[:MAX_KEY]
