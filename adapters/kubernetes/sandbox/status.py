"""What the kubelet and the controllers report: pod statuses, scheduling, and workload statuses."""

from __future__ import annotations

import hashlib

import structlog

from adapters.kubernetes.objects import revision as revision_of
from adapters.kubernetes.sandbox.common import (
    CONTROLLER_REVISION_HASH,
    JSON,
    _clone,
    _int_or_percent,
    _is_ready,
    _meta,
    _name,
    _namespace,
    _now,
    _set_optional,
    _spec,
    _strip_hash,
    _template_hash,
    _ts,
)
from adapters.kubernetes.sandbox.store import Store

log = structlog.get_logger(__name__)


class Statuses(Store):
    def _pod_status(self, pod: JSON) -> JSON:
        spec = _spec(pod)
        now = _ts(_now())
        node_name = spec.get("nodeName")
        if not node_name:
            return {
                "phase": "Pending",
                "qosClass": _qos(spec),
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: node(s) were unschedulable.",
                        "lastTransitionTime": now,
                    }
                ],
            }
        node = self.find("Node", None, str(node_name))
        host_ip = "10.0.0.1"
        if node is not None:
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == "InternalIP":
                    host_ip = address["address"]
        self.ip_counter += 1
        node_index = int(str(node_name).rsplit("-", 1)[-1]) if str(node_name)[-1:].isdigit() else 0
        pod_ip = f"10.244.{node_index}.{self.ip_counter % 250 + 2}"
        statuses = []
        for container in spec.get("containers") or []:
            image = str(container.get("image", ""))
            digest = hashlib.sha256(image.encode()).hexdigest()
            container_id = hashlib.sha256(f"{image}/{self.ip_counter}".encode()).hexdigest()
            statuses.append(
                {
                    "name": container.get("name"),
                    "image": image,
                    "imageID": f"{image.split(':', 1)[0]}@sha256:{digest}",
                    "containerID": f"containerd://{container_id}",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                    "lastState": {},
                }
            )
        conditions = [
            {"type": kind, "status": "True", "lastTransitionTime": now}
            for kind in (
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled",
            )
        ]
        return {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": now,
            "containerStatuses": statuses,
            "qosClass": _qos(spec),
        }

    def _schedule_pending(self) -> None:
        """Pods left Pending because every node was cordoned get a node once one is free."""
        for pod in self.all("Pod"):
            if _spec(pod).get("nodeName") or _meta(pod).get("deletionTimestamp"):
                continue
            node = self._schedulable_node()
            if node is None:
                return
            updated = _clone(pod)
            _spec(updated)["nodeName"] = node
            updated["status"] = self._pod_status(updated)
            self._save(updated)

    def _update_statuses(self, namespace: str | None = None, workload: JSON | None = None) -> None:
        if workload is not None:
            current = self.find(workload["kind"], _namespace(workload), _name(workload))
            if current is None:
                return
            if current["kind"] == "Deployment":
                for replica_set in self._owned("ReplicaSet", current):
                    self._replica_set_status(replica_set)
                self._deployment_status(current)
            elif current["kind"] == "StatefulSet":
                self._stateful_set_status(current)
            elif current["kind"] == "DaemonSet":
                self._daemon_set_status(current)
            return
        for replica_set in self.all("ReplicaSet", namespace):
            self._replica_set_status(replica_set)
        for deployment in self.all("Deployment", namespace):
            self._deployment_status(deployment)
        for stateful_set in self.all("StatefulSet", namespace):
            self._stateful_set_status(stateful_set)
        for daemon_set in self.all("DaemonSet", namespace):
            self._daemon_set_status(daemon_set)

    def _replica_set_status(self, replica_set: JSON) -> None:
        pods = self._owned("Pod", replica_set)
        updated = _clone(replica_set)
        status = updated.setdefault("status", {})
        status["replicas"] = len(pods)
        ready = sum(1 for p in pods if _is_ready(p))
        _set_optional(status, "fullyLabeledReplicas", len(pods))
        _set_optional(status, "readyReplicas", ready)
        _set_optional(status, "availableReplicas", ready)
        status["observedGeneration"] = updated["metadata"].get("generation", 1)
        self._save(updated)

    def _stateful_set_status(self, stateful_set: JSON) -> None:
        pods = self._owned("Pod", stateful_set)
        template = _strip_hash(stateful_set["spec"].get("template"), CONTROLLER_REVISION_HASH)
        revision = f"{_name(stateful_set)}-{_template_hash(template)}"
        ready = sum(1 for p in pods if _is_ready(p))
        updated = _clone(stateful_set)
        status: JSON = {
            "replicas": len(pods),
            "observedGeneration": updated["metadata"].get("generation", 1),
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        _set_optional(status, "readyReplicas", ready)
        _set_optional(status, "availableReplicas", ready)
        _set_optional(status, "currentReplicas", len(pods))
        _set_optional(status, "updatedReplicas", len(pods))
        updated["status"] = status
        self._save(updated)

    def _daemon_set_status(self, daemon_set: JSON) -> None:
        node_count = len(self.all("Node"))
        pods = self._owned("Pod", daemon_set)
        ready = sum(1 for p in pods if _is_ready(p))
        updated = _clone(daemon_set)
        status = {
            "currentNumberScheduled": len(pods),
            "desiredNumberScheduled": node_count,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "observedGeneration": updated["metadata"].get("generation", 1),
        }
        _set_optional(status, "numberAvailable", ready)
        _set_optional(status, "updatedNumberScheduled", len(pods))
        _set_optional(status, "numberUnavailable", node_count - ready)
        updated["status"] = status
        self._save(updated)

    def _deployment_status(self, deployment: JSON) -> None:
        spec = deployment["spec"]
        replicas = int(spec.get("replicas", 1))
        owned = self._owned("ReplicaSet", deployment)
        newest = max(owned, key=revision_of, default=None)
        pods = [p for rs in owned for p in self._owned("Pod", rs)]
        new_pods = self._owned("Pod", newest) if newest is not None else []
        ready = sum(1 for p in pods if _is_ready(p))
        max_unavailable = _int_or_percent(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", 0),
            replicas,
            round_up=False,
        )
        updated = _clone(deployment)
        old_status = deployment.get("status") or {}
        status: JSON = {"observedGeneration": updated["metadata"].get("generation", 1)}
        _set_optional(status, "replicas", len(pods))
        _set_optional(status, "updatedReplicas", len(new_pods))
        _set_optional(status, "readyReplicas", ready)
        _set_optional(status, "availableReplicas", ready)
        _set_optional(status, "unavailableReplicas", max(0, replicas - ready))
        available = ready >= replicas - max_unavailable
        rs_name = _name(newest) if newest is not None else _name(deployment)
        wanted = [
            (
                "Available",
                "True" if available else "False",
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            ),
            (
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            ),
        ]
        previous = {c.get("type"): c for c in old_status.get("conditions") or []}
        now = _ts(_now())
        conditions = []
        for kind, value, reason, message in wanted:
            before = previous.get(kind) or {}
            same = before.get("status") == value and before.get("reason") == reason and before.get("message") == message
            conditions.append(
                {
                    "type": kind,
                    "status": value,
                    "reason": reason,
                    "message": message,
                    "lastUpdateTime": before.get("lastUpdateTime", now) if same else now,
                    "lastTransitionTime": before.get("lastTransitionTime", now)
                    if before.get("status") == value
                    else now,
                }
            )
        status["conditions"] = conditions
        updated["status"] = status
        self._save(updated)

    # ---- seed



def _qos(spec: JSON) -> str:
    for container in spec.get("containers") or []:
        if (container.get("resources") or {}).get("requests") or (container.get("resources") or {}).get("limits"):
            return "Burstable"
    return "BestEffort"


