"""What the kubelet and the controllers report: pod statuses, scheduling, and workload statuses."""

from __future__ import annotations

import hashlib
import heapq
import time

import structlog

from adapters.kubernetes.objects import revision as revision_of
from adapters.kubernetes.sandbox.common import (
    CONTROLLER_REVISION_HASH,
    JSON,
    _clone,
    _int_or_percent,
    _is_ready,
    _labels,
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

# A workload annotated with one of these gets new pods that never become Ready, with the matching
# container status; its value names the fault.
FAIL = "sandbox.signoff.dev/fail"
FAULTS = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
                    "InvalidImageName"})
# What a crash-looping container says as it dies (`lastState.terminated.message`), else a default naming the fault.
FAIL_MESSAGE = "sandbox.signoff.dev/fail-message"
# Seconds a workload's new pods take to become Ready (else the sandbox's `ready_delay`).
READY_AFTER = "sandbox.signoff.dev/ready-after"
# The kubelet's crash-loop back-off: 10 s doubling up to 5 minutes (`restart_interval` scales it: tests
# and the demo make it short).
BACKOFF_S = tuple(min(10 * 2**i, 300) for i in range(40))


def restarts_after(elapsed: float, interval: float = 10.0) -> int:
    """How often a crash-looping container has restarted `elapsed` seconds after the pod started."""
    count, spent = 1, 0.0
    for step in (b * interval / 10.0 for b in BACKOFF_S):
        spent += step
        if spent > elapsed:
            break
        count += 1
    return count


class Statuses(Store):
    """Statuses, and the sandbox's time: pods become Ready after a delay, faults never do.

    `clock()` is monotonic time plus `time_offset`, so a test moves time on with `advance`; work
    that falls due (a pod turning Ready, a progress deadline) is done by `tick`, which the server
    runs before answering each request.
    """

    def __init__(self, *, rng_seed: int = 0) -> None:
        super().__init__(rng_seed=rng_seed)
        self.ready_delay = 0.0
        self.restart_interval = 10.0  # the first crash-loop back-off, in seconds (then doubling)
        self.time_offset = 0.0
        self._ready_at: dict[str, tuple[float, str, str]] = {}  # pod uid → (when, namespace, name)
        self._faults: dict[str, tuple[str, float, str, str]] = {}  # pod uid → (reason, started, ns, name)
        self._timers: list[tuple[float, str, str, str]] = []  # (when, kind, namespace, name) to reconcile
        self.rollout_started: dict[str, float] = {}  # Deployment uid → when its current rollout began

    def clock(self) -> float:
        return time.monotonic() + self.time_offset

    def advance(self, seconds: float) -> None:
        self.time_offset += seconds
        self.tick()

    def wake(self, when: float, workload: JSON) -> None:
        heapq.heappush(self._timers, (when, str(workload["kind"]), _namespace(workload), _name(workload)))

    def tick(self) -> None:
        """Do what time made due: pods turn Ready, crash loops count up, workloads reconcile."""
        if not self._timers or self._timers[0][0] > self.clock():
            return
        now = self.clock()
        due: set[tuple[str, str, str]] = set()
        while self._timers and self._timers[0][0] <= now:
            _, kind, namespace, name = heapq.heappop(self._timers)
            due.add((kind, namespace, name))
        for uid, (when, namespace, name) in list(self._ready_at.items()):
            if when > now:
                continue
            del self._ready_at[uid]
            pod = self.find("Pod", namespace, name)
            if pod is not None and pod["metadata"]["uid"] == uid:
                self._save(_made_ready(pod))
        for uid, (reason, started, namespace, name) in list(self._faults.items()):
            pod = self.find("Pod", namespace, name)
            if pod is None or pod["metadata"]["uid"] != uid:
                del self._faults[uid]
            else:
                self._fault_moves_on(pod, reason, now - started)
        for kind, namespace, name in sorted(due):
            workload = self.find(kind, namespace, name)
            if workload is not None:
                self.reconcile(namespace, workload)
                if kind in ("Deployment", "StatefulSet", "DaemonSet") and any(
                    f[2] == namespace for f in self._faults.values()
                ):
                    # Keep counting the crash loop while its pods exist.
                    self.wake(now + min(10.0, self.restart_interval), workload)

    def reconcile(self, namespace: str | None = None, workload: JSON | None = None) -> None:
        raise NotImplementedError  # the controllers

    def hold_back(self, owner: JSON, top: JSON, pod: JSON) -> None:
        """A new pod of `owner` (whose workload is `top`): not Ready yet, or never (a fault)."""
        annotations = (owner["metadata"].get("annotations") or {})
        fault = annotations.get(FAIL)
        try:
            delay = float(annotations.get(READY_AFTER, self.ready_delay))
        except ValueError:
            delay = self.ready_delay
        if not _spec(pod).get("nodeName") or (fault not in FAULTS and delay <= 0):
            return
        now = self.clock()
        pod["status"] = _not_ready(pod, fault if fault in FAULTS else None, annotations.get(FAIL_MESSAGE))
        uid = pod["metadata"]["uid"]
        if fault in FAULTS:
            self._faults[uid] = (str(fault), now, _namespace(pod), _name(pod))
            self.wake(now + min(10.0, self.restart_interval), top)
        else:
            self._ready_at[uid] = (now + delay, _namespace(pod), _name(pod))
            self.wake(now + delay, top)

    def _fault_moves_on(self, pod: JSON, fault: str, elapsed: float) -> None:
        """A faulty pod as time passes: a crash loop counts its restarts; an image pull backs off."""
        if fault == "CrashLoopBackOff":
            count = restarts_after(elapsed, self.restart_interval)
            if any(c.get("restartCount") != count for c in (pod.get("status") or {}).get("containerStatuses") or []):
                self._save(_restarted(pod, count, self.restart_interval))
        elif fault in ("ImagePullBackOff", "ErrImagePull") and elapsed >= self.restart_interval:
            # ErrImagePull at first, then the kubelet backs off: ImagePullBackOff.
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            if any(((c.get("state") or {}).get("waiting") or {}).get("reason") == "ErrImagePull" for c in statuses):
                updated = _clone(pod)
                for container in updated["status"].get("containerStatuses") or []:
                    container["state"] = {"waiting": {
                        "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{container.get("image")}"'}}
                self._save(updated)

    def holds_back(self, workload: JSON) -> bool:
        """Whether the workload's new pods may take time (a delay or a fault): it then rolls gradually."""
        annotations = workload["metadata"].get("annotations") or {}
        if annotations.get(FAIL) in FAULTS:
            return True
        try:
            return float(annotations.get(READY_AFTER, self.ready_delay)) > 0
        except ValueError:
            return self.ready_delay > 0

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
        replicas = int(stateful_set["spec"].get("replicas", 1))
        updated_pods = sum(1 for p in pods if _labels(p).get(CONTROLLER_REVISION_HASH) == revision)
        # The current revision moves on only once every pod runs the update and is Ready.
        current = revision if ready == len(pods) == replicas == updated_pods else (
            (stateful_set.get("status") or {}).get("currentRevision") or revision)
        status: JSON = {
            "replicas": len(pods),
            "observedGeneration": updated["metadata"].get("generation", 1),
            "currentRevision": current,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        _set_optional(status, "readyReplicas", ready)
        _set_optional(status, "availableReplicas", ready)
        # Pods on the update revision (all of them, once a rolling update is through; OnDelete: the ones
        # deleted and recreated since the template changed).
        _set_optional(status, "currentReplicas", sum(1 for p in pods if _labels(p).get(CONTROLLER_REVISION_HASH)
                                                     == current))
        _set_optional(status, "updatedReplicas", sum(1 for p in pods if _labels(p).get(CONTROLLER_REVISION_HASH)
                                                     == revision))
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
        template = _strip_hash(daemon_set["spec"].get("template"), CONTROLLER_REVISION_HASH)
        revision = _template_hash(template)[:10]
        _set_optional(status, "updatedNumberScheduled",
                      sum(1 for p in pods if _labels(p).get(CONTROLLER_REVISION_HASH) == revision))
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
        complete = len(new_pods) == replicas and len(pods) == replicas and ready == replicas
        started = self.rollout_started.get(deployment["metadata"]["uid"])
        deadline = spec.get("progressDeadlineSeconds")
        if complete or started is None:
            progressing = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        elif deadline is not None and self.clock() - started > float(deadline):
            progressing = ("False", "ProgressDeadlineExceeded",
                           f'ReplicaSet "{rs_name}" has timed out progressing.')
        else:
            progressing = ("True", "ReplicaSetUpdated",
                           f'ReplicaSet "{rs_name}" is progressing.')
        wanted = [
            (
                "Available",
                "True" if available else "False",
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            ),
            ("Progressing", *progressing),
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



def _not_ready(pod: JSON, fault: str | None, message: str | None = None) -> JSON:
    """A scheduled pod whose containers are not Ready yet (starting), or never (the fault)."""
    status = _clone(pod.get("status") or {})
    for condition in status.get("conditions") or []:
        if condition.get("type") in ("Ready", "ContainersReady"):
            condition["status"] = "False"
            condition["reason"] = "ContainersNotReady"
            condition["message"] = "containers with unready status: [" + " ".join(
                str(c.get("name")) for c in _spec(pod).get("containers") or []) + "]"
    for container in status.get("containerStatuses") or []:
        container["ready"] = False
        if fault == "CrashLoopBackOff":
            container["started"] = False
            container["restartCount"] = 1
            container["state"] = {"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 10s restarting failed container={container.get('name')} pod={_name(pod)}",
            }}
            said = message or f"{container.get('name')} exited with status 1 (the sandbox's {FAIL} fault)"
            container["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "message": said,
                                                     "startedAt": _ts(_now()), "finishedAt": _ts(_now())}}
        elif fault is not None:
            # Image and config faults: the container never started (the pod stays Pending).
            status["phase"] = "Pending"
            container["started"] = False
            reason = "ErrImagePull" if fault == "ImagePullBackOff" else fault
            container["state"] = {"waiting": {"reason": reason, "message": _waiting_message(fault, container)}}
            container.pop("containerID", None)
            container["imageID"] = ""
    return status


def _made_ready(pod: JSON) -> JSON:
    updated = _clone(pod)
    status = updated.setdefault("status", {})
    for condition in status.get("conditions") or []:
        if condition.get("type") in ("Ready", "ContainersReady"):
            condition["status"] = "True"
            condition.pop("reason", None)
            condition.pop("message", None)
            condition["lastTransitionTime"] = _ts(_now())
    for container in status.get("containerStatuses") or []:
        container["ready"] = True
    return updated


def _waiting_message(fault: str, container: JSON) -> str:
    image = container.get("image")
    if fault in ("ImagePullBackOff", "ErrImagePull"):
        return f'failed to pull image "{image}": not found'
    if fault == "InvalidImageName":
        return f'Failed to apply default image tag "{image}": couldn\'t parse image name'
    return f'secret "{container.get("name")}-config" not found'


def _restarted(pod: JSON, count: int, interval: float = 10.0) -> JSON:
    updated = _clone(pod)
    for container in (updated.get("status") or {}).get("containerStatuses") or []:
        container["restartCount"] = count
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            back_off = min(BACKOFF_S[min(count - 1, len(BACKOFF_S) - 1)] * interval / 10.0, 30 * interval)
            waiting["message"] = (f"back-off {back_off:g}s restarting failed container={container.get('name')} "
                                  f"pod={_name(pod)}")
        terminated = (container.get("lastState") or {}).get("terminated")
        if terminated:
            terminated["finishedAt"] = _ts(_now())
    return updated


def _qos(spec: JSON) -> str:
    for container in spec.get("containers") or []:
        if (container.get("resources") or {}).get("requests") or (container.get("resources") or {}).get("limits"):
            return "Burstable"
    return "BestEffort"


