"""The simulated controllers: Deployment → ReplicaSet → Pod, StatefulSet, DaemonSet, node taints, garbage collection."""

from __future__ import annotations

import structlog

from adapters.kubernetes.objects import POD_TEMPLATE_HASH, REVISION, pruned
from adapters.kubernetes.objects import revision as revision_of
from adapters.kubernetes.sandbox.common import (
    _NOT_COPIED_TO_RS,
    CONTROLLER_REVISION_HASH,
    DESIRED_REPLICAS,
    JSON,
    MAX_REPLICAS,
    REVISION_HISTORY,
    UNSCHEDULABLE_TAINT,
    _annotations,
    _clone,
    _controller_ref,
    _int_or_percent,
    _is_ready,
    _labels,
    _meta,
    _name,
    _namespace,
    _now,
    _spec,
    _strip_hash,
    _template_hash,
    _ts,
)
from adapters.kubernetes.sandbox.resources import _BY_KIND, _resource_for
from adapters.kubernetes.sandbox.status import Statuses
from adapters.kubernetes.sandbox.validation import _default_pod_spec, default

log = structlog.get_logger(__name__)


class Controllers(Statuses):
    # ---- test hooks (called under the lock)

    def put(self, obj: JSON, *, reconcile: bool = True) -> JSON:
        obj = _clone(obj)
        resource = _BY_KIND.get(str(obj.get("kind", "")))
        if resource is None:
            raise ValueError(f"the sandbox does not serve kind {obj.get('kind')!r}")
        obj["apiVersion"] = resource.api_version
        meta = _meta(obj)
        if not meta.get("name"):
            raise ValueError("an object needs metadata.name")
        if resource.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        existing = self.find(resource.kind, meta.get("namespace"), meta["name"])
        meta.setdefault("uid", existing["metadata"]["uid"] if existing else self._uid())
        meta.setdefault("creationTimestamp", existing["metadata"]["creationTimestamp"] if existing else _ts(_now()))
        default(resource, obj)
        if resource.has_generation:
            if existing is None:
                meta.setdefault("generation", 1)
            elif pruned(existing.get("spec")) != pruned(obj.get("spec")):
                meta["generation"] = int(existing["metadata"].get("generation", 1)) + 1
            else:
                meta.setdefault("generation", existing["metadata"].get("generation", 1))
        if resource.kind == "Pod":
            self._complete_pod(obj)
        self._store(obj)
        if reconcile:
            self.reconcile()
        return _clone(self.find(resource.kind, meta.get("namespace"), meta["name"]) or obj)

    def delete_object(self, kind: str, namespace: str | None, name: str) -> bool:
        resource = _resource_for(kind)
        removed = self._remove(resource.kind, namespace or "" if resource.namespaced else "", name)
        if removed is not None:
            self.reconcile()
        return removed is not None

    # ---- HTTP semantics


    def reconcile(self, namespace: str | None = None, workload: JSON | None = None) -> None:
        """Run the simulated controllers once; each step only writes what actually changes.

        A write to one workload only concerns that workload's controller chain (workload →
        ReplicaSets → pods); a write to another namespaced object, the controllers of its
        namespace; nodes and the like, everything (`namespace=None`). Scoping keeps a write's cost
        independent of the cluster's size.
        """
        self._sync_node_taints()
        self._collect_garbage()
        kind = workload["kind"] if workload is not None else None
        current = self.find(kind, _namespace(workload), _name(workload)) if workload is not None and kind else None

        def scoped(of_kind: str) -> list[JSON]:
            if workload is None:
                return self.all(of_kind, namespace)
            return [current] if current is not None and kind == of_kind else []

        deployments = scoped("Deployment")
        for deployment in deployments:
            self._reconcile_deployment(deployment)
        if workload is None:
            replica_sets = self.all("ReplicaSet", namespace)
        else:
            replica_sets = [rs for d in deployments for rs in self._owned("ReplicaSet", d)]
        for replica_set in replica_sets:
            self._reconcile_replica_set(replica_set)
        for deployment in deployments:
            if self.holds_back(deployment) or any(self.holds_back(rs) for rs in self._owned("ReplicaSet", deployment)):
                # A gradual rollout: old pods go only as new ones turn Ready, which the first pass created.
                fresh = self.find("Deployment", _namespace(deployment), _name(deployment))
                if fresh is not None:
                    self._reconcile_deployment(fresh)
                    for replica_set in self._owned("ReplicaSet", fresh):
                        self._reconcile_replica_set(replica_set)
        for stateful_set in scoped("StatefulSet"):
            self._reconcile_stateful_set(stateful_set)
        for daemon_set in scoped("DaemonSet"):
            self._reconcile_daemon_set(daemon_set)
        self._schedule_pending()
        self._update_statuses(namespace, workload)

    def _sync_node_taints(self) -> None:
        for node in self.all("Node"):
            updated = _clone(node)
            spec = _spec(updated)
            taints = [t for t in spec.get("taints") or [] if t.get("key") != UNSCHEDULABLE_TAINT]
            if spec.get("unschedulable"):
                existing = next((t for t in spec.get("taints") or [] if t.get("key") == UNSCHEDULABLE_TAINT), None)
                taints.append(
                    existing or {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": _ts(_now())}
                )
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            self._save(updated)

    def _collect_garbage(self) -> None:
        """Delete dependents whose controlling owner is gone, as the garbage collector does."""
        for kind in ("ReplicaSet", "Pod"):
            for obj in self.all(kind):
                ref = _controller_ref(obj)
                if ref is None:
                    continue
                owner = self.find(str(ref.get("kind")), _namespace(obj), str(ref.get("name")))
                if owner is None or owner["metadata"]["uid"] != ref.get("uid"):
                    self._remove(kind, _namespace(obj), _name(obj))

    @staticmethod
    def _owner_ref(owner: JSON) -> JSON:
        return {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def _reconcile_deployment(self, deployment: JSON) -> None:
        namespace = _namespace(deployment)
        spec = deployment["spec"]
        replicas = int(spec.get("replicas", 1))
        template = _strip_hash(spec.get("template"))
        owned = self._owned("ReplicaSet", deployment)
        wanted = pruned(template)
        current = next((rs for rs in owned if pruned(_strip_hash(rs["spec"].get("template"))) == wanted), None)
        max_revision = max((revision_of(rs) for rs in owned), default=0)
        surge = _int_or_percent(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", 0),
            replicas,
            round_up=True,
        )
        if current is None:
            current = self._new_replica_set(deployment, template, max_revision + 1)
            self._rollout_began(deployment)
        elif revision_of(current) < max_revision:
            self._rollout_began(deployment)
            # Rolling back to an old template re-uses its ReplicaSet under a new revision number.
            revived = _clone(current)
            annotations = _annotations(revived)
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
            annotations[REVISION_HISTORY] = ",".join([*history, str(revision_of(current))])
            annotations[REVISION] = str(max_revision + 1)
            current = self._save(revived)
        revision = str(revision_of(current))
        if (deployment["metadata"].get("annotations") or {}).get(REVISION) != revision:
            updated = _clone(deployment)
            _annotations(updated)[REVISION] = revision
            self._save(updated)
        gradual = self.holds_back(deployment) or any(self.holds_back(rs) for rs in owned)
        # Old pods stay until enough new ones are Ready (maxUnavailable 0), when pods take time to start.
        remaining = max(0, replicas - sum(1 for p in self._owned("Pod", current) if _is_ready(p))) if gradual else 0
        for rs in sorted(self._owned("ReplicaSet", deployment), key=revision_of, reverse=True):
            if _name(rs) == _name(current):
                want = replicas
            else:
                want = min(int(rs["spec"].get("replicas", 0)), remaining)
                remaining -= want
            updated = _clone(rs)
            _spec(updated)["replicas"] = want
            if want:
                _annotations(updated)[DESIRED_REPLICAS] = str(replicas)
                _annotations(updated)[MAX_REPLICAS] = str(replicas + surge)
            self._save(updated)
        limit = int(spec.get("revisionHistoryLimit", 10))
        old = sorted(
            (rs for rs in self._owned("ReplicaSet", deployment) if _name(rs) != _name(current)),
            key=revision_of,
        )
        for rs in old[: max(0, len(old) - limit)]:
            self._remove("ReplicaSet", namespace, _name(rs))

    def _rollout_began(self, deployment: JSON) -> None:
        now = self.clock()
        self.rollout_started[deployment["metadata"]["uid"]] = now
        deadline = deployment["spec"].get("progressDeadlineSeconds")
        if deadline is not None and self.holds_back(deployment):
            self.wake(now + float(deadline) + 0.001, deployment)

    def _new_replica_set(self, deployment: JSON, template: JSON, revision: int) -> JSON:
        pod_hash = _template_hash(template)
        template = _clone(template)
        template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = pod_hash
        selector = _clone(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = pod_hash
        annotations = {
            k: v for k, v in (deployment["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED_TO_RS
        }
        annotations[REVISION] = str(revision)
        replica_set: JSON = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{_name(deployment)}-{pod_hash}",
                "namespace": _namespace(deployment),
                "uid": self._uid(),
                "generation": 1,
                "creationTimestamp": _ts(_now()),
                "labels": dict(template["metadata"]["labels"]),
                "annotations": annotations,
                "ownerReferences": [self._owner_ref(deployment)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
            "status": {"replicas": 0, "observedGeneration": 1},
        }
        return self._store(replica_set)

    def _reconcile_replica_set(self, replica_set: JSON) -> None:
        pods = self._owned("Pod", replica_set)
        wanted = int(replica_set["spec"].get("replicas", 1))
        template = replica_set["spec"].get("template") or {}
        for _ in range(wanted - len(pods)):
            self._create_pod(replica_set, template, f"{_name(replica_set)}-{self._suffix()}")
        if len(pods) > wanted:
            # The ReplicaSet controller deletes unscheduled pods first, then the newest.
            victims = sorted(
                pods, key=lambda p: (bool(_spec(p).get("nodeName")), -int(p["metadata"]["resourceVersion"]))
            )
            for pod in victims[: len(pods) - wanted]:
                self._remove("Pod", _namespace(pod), _name(pod))

    def _reconcile_stateful_set(self, stateful_set: JSON) -> None:
        namespace, name = _namespace(stateful_set), _name(stateful_set)
        spec = stateful_set["spec"]
        template = _strip_hash(spec.get("template"), CONTROLLER_REVISION_HASH)
        revision = f"{name}-{_template_hash(template)}"
        replicas = int(spec.get("replicas", 1))
        pods = {_name(p): p for p in self._owned("Pod", stateful_set)}
        # OnDelete: a template change replaces no pod; a pod that is deleted comes back on the new template.
        on_delete = _update_strategy(spec) == "OnDelete"
        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            pod = pods.pop(pod_name, None)
            if pod is not None and (on_delete or _labels(pod).get(CONTROLLER_REVISION_HASH) == revision):
                continue
            if pod is not None:
                self._remove("Pod", namespace, pod_name)
            claims = self._ensure_claims(stateful_set, ordinal)
            pod_template = _clone(template)
            labels = pod_template.setdefault("metadata", {}).setdefault("labels", {})
            labels.update(
                {
                    CONTROLLER_REVISION_HASH: revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(ordinal),
                }
            )
            pod_spec = pod_template.setdefault("spec", {})
            pod_spec["hostname"] = pod_name
            if spec.get("serviceName"):
                pod_spec["subdomain"] = spec["serviceName"]
            volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims]
            volumes.extend({"name": t, "persistentVolumeClaim": {"claimName": c}} for t, c in claims.items())
            pod_spec["volumes"] = volumes
            self._create_pod(stateful_set, pod_template, pod_name)
        for pod in pods.values():
            self._remove("Pod", namespace, _name(pod))

    def _ensure_claims(self, stateful_set: JSON, ordinal: int) -> dict[str, str]:
        """PersistentVolumeClaims from volumeClaimTemplates, kept when pods go (whenScaled: Retain)."""
        claims: dict[str, str] = {}
        namespace = _namespace(stateful_set)
        for template in stateful_set["spec"].get("volumeClaimTemplates") or []:
            template_name = template["metadata"]["name"]
            claim_name = f"{template_name}-{_name(stateful_set)}-{ordinal}"
            claims[template_name] = claim_name
            if self.find("PersistentVolumeClaim", namespace, claim_name) is not None:
                continue
            claim_spec = _clone(template.get("spec") or {})
            claim_spec.setdefault("storageClassName", "standard")
            claim_spec.setdefault("volumeMode", "Filesystem")
            volume_name = f"pvc-{self._uid()}"
            claim_spec["volumeName"] = volume_name
            storage = ((claim_spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            self._store(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": claim_name,
                        "namespace": namespace,
                        "uid": self._uid(),
                        "creationTimestamp": _ts(_now()),
                        "labels": dict((stateful_set["spec"].get("selector") or {}).get("matchLabels") or {}),
                        "annotations": {
                            "pv.kubernetes.io/bind-completed": "yes",
                            "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path",
                        },
                        "finalizers": ["kubernetes.io/pvc-protection"],
                    },
                    "spec": claim_spec,
                    "status": {
                        "phase": "Bound",
                        "accessModes": list(claim_spec.get("accessModes") or ["ReadWriteOnce"]),
                        "capacity": {"storage": storage},
                    },
                }
            )
        return claims

    def _reconcile_daemon_set(self, daemon_set: JSON) -> None:
        namespace = _namespace(daemon_set)
        template = _strip_hash(daemon_set["spec"].get("template"), CONTROLLER_REVISION_HASH)
        revision = _template_hash(template)[:10]
        by_node: dict[str, JSON] = {}
        on_delete = _update_strategy(daemon_set["spec"]) == "OnDelete"
        for pod in self._owned("Pod", daemon_set):
            node = str(_spec(pod).get("nodeName", ""))
            if node in by_node or (not on_delete and _labels(pod).get(CONTROLLER_REVISION_HASH) != revision):
                self._remove("Pod", namespace, _name(pod))
            else:
                by_node[node] = pod
        nodes = [_name(n) for n in self.all("Node")]
        for node in nodes:
            if node in by_node:
                continue
            pod_template = _clone(template)
            labels = pod_template.setdefault("metadata", {}).setdefault("labels", {})
            labels[CONTROLLER_REVISION_HASH] = revision
            labels["pod-template-generation"] = str(daemon_set["metadata"].get("generation", 1))
            # DaemonSet pods tolerate cordoned nodes: they land on every node regardless.
            self._create_pod(daemon_set, pod_template, f"{_name(daemon_set)}-{self._suffix()}", node=node)
        for node, pod in by_node.items():
            if node not in nodes:
                self._remove("Pod", namespace, _name(pod))

    def _create_pod(self, owner: JSON, template: JSON, name: str, *, node: str | None = None) -> JSON:
        template = _clone(template)
        template_meta = template.get("metadata") or {}
        pod: JSON = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": _namespace(owner),
                "uid": self._uid(),
                "creationTimestamp": _ts(_now()),
                "labels": dict(template_meta.get("labels") or {}),
                "ownerReferences": [self._owner_ref(owner)],
            },
            "spec": template.get("spec") or {},
        }
        if owner["kind"] != "StatefulSet":
            pod["metadata"]["generateName"] = f"{_name(owner)}-"
        if template_meta.get("annotations"):
            pod["metadata"]["annotations"] = dict(template_meta["annotations"])
        if node is not None:
            pod["spec"]["nodeName"] = node
        self._complete_pod(pod)
        top = owner
        ref = _controller_ref(owner)
        if owner["kind"] == "ReplicaSet" and ref is not None:
            top = self.find("Deployment", _namespace(owner), str(ref.get("name"))) or owner
        self.hold_back(owner, top, pod)
        return self._store(pod)

    def _complete_pod(self, pod: JSON) -> None:
        """What the scheduler and the kubelet add: a node, defaults, and a Running status."""
        spec = _spec(pod)
        _default_pod_spec(spec)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        spec.setdefault(
            "tolerations",
            [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
        )
        if not spec.get("nodeName"):
            node = self._schedulable_node()
            if node is not None:
                spec["nodeName"] = node
        if "status" not in pod or not spec.get("nodeName") or (pod.get("status") or {}).get("phase") == "Pending":
            pod["status"] = self._pod_status(pod)


def _update_strategy(spec: JSON) -> str:
    """A StatefulSet's or DaemonSet's `spec.updateStrategy.type` (RollingUpdate unless OnDelete)."""
    strategy = spec.get("updateStrategy")
    return str(strategy.get("type") or "RollingUpdate") if isinstance(strategy, dict) else "RollingUpdate"
