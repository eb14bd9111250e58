"""Defaulting and validation of written objects, as the API server does before it stores them."""

from __future__ import annotations

import json
from typing import Any

import structlog

from adapters.kubernetes.objects import pruned
from adapters.kubernetes.sandbox.common import JSON, _labels, _spec
from adapters.kubernetes.sandbox.errors import _ApiError, _bad_request, _Cause, _invalid_value, _required
from adapters.kubernetes.sandbox.resources import _Resource
from adapters.kubernetes.sandbox.selectors import _LABEL_VALUE, _selector_matches

log = structlog.get_logger(__name__)


def default(resource: _Resource, obj: JSON) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    kind = resource.kind
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        spec.setdefault("replicas", 1)
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        spec.setdefault("revisionHistoryLimit", 10)
    if kind == "Deployment":
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if isinstance(strategy, dict) and strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxSurge", "25%")
                rolling.setdefault("maxUnavailable", "25%")
    if kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
        for claim in spec.get("volumeClaimTemplates") or []:
            if isinstance(claim, dict):
                claim.setdefault("apiVersion", "v1")
                claim.setdefault("kind", "PersistentVolumeClaim")
                if isinstance(claim.get("spec"), dict):
                    claim["spec"].setdefault("volumeMode", "Filesystem")
                claim.setdefault("status", {"phase": "Pending"})
    if kind == "DaemonSet":
        spec.setdefault(
            "updateStrategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        )
    template = spec.get("template")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet") and isinstance(template, dict):
        pod_spec = template.get("spec")
        if isinstance(pod_spec, dict):
            _default_pod_spec(pod_spec)
    if kind == "Pod":
        _default_pod_spec(spec)


def check_types(resource: _Resource, obj: JSON) -> None:
    """Decoding errors: a real server rejects wrongly-typed fields with 400 before validating."""

    def fail(path: str, go_type: str, value: Any) -> _ApiError:
        return _bad_request(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field {path} of type {go_type}"
        )

    meta = obj["metadata"]
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise fail(f"ObjectMeta.metadata.{key}", "map[string]string", value)
        for item in value.values():
            if not isinstance(item, str):
                raise fail(f"ObjectMeta.metadata.{key}", "string", item)
    spec = obj.get("spec")
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise fail(f"{resource.kind}.spec", f"v1.{resource.kind}Spec", spec)
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool)):
        raise fail(f"{resource.kind}Spec.spec.replicas", "int32", replicas)
    unschedulable = spec.get("unschedulable")
    if resource.kind == "Node" and unschedulable is not None and not isinstance(unschedulable, bool):
        raise fail("NodeSpec.spec.unschedulable", "bool", unschedulable)
    template = spec.get("template")
    if template is not None and not isinstance(template, dict):
        raise fail(f"{resource.kind}Spec.spec.template", "v1.PodTemplateSpec", template)
    if isinstance(template, dict):
        template_meta = template.get("metadata")
        if template_meta is not None and not isinstance(template_meta, dict):
            raise fail("PodTemplateSpec.spec.template.metadata", "v1.ObjectMeta", template_meta)
        for key in ("labels", "annotations"):
            value = (template_meta or {}).get(key)
            if value is not None and (
                not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
            ):
                raise fail(f"ObjectMeta.spec.template.metadata.{key}", "map[string]string", value)
        containers = (template.get("spec") or {}).get("containers")
        if containers is not None and (
            not isinstance(containers, list) or not all(isinstance(c, dict) for c in containers)
        ):
            raise fail("PodSpec.spec.template.spec.containers", "[]v1.Container", containers)


def validate(resource: _Resource, obj: JSON, old: JSON | None) -> list[_Cause]:
    causes: list[_Cause] = []
    for key, value in _labels(obj).items():
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(_invalid_value("metadata.labels", value, f"a valid label value is required for {key!r}"))
    if resource.kind not in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return causes
    spec = _spec(obj)
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        causes.append(_invalid_value("spec.replicas", replicas, "must be greater than or equal to 0"))
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(_required("spec.selector"))
        selector = None
    elif old is not None and pruned(selector) != pruned(_spec(old).get("selector")):
        causes.append(_invalid_value("spec.selector", selector.get("matchLabels", {}), "field is immutable"))
    template = spec.get("template")
    if not isinstance(template, dict):
        causes.append(_required("spec.template"))
        return causes
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if selector is not None and not _selector_matches(selector, template_labels):
        causes.append(
            _invalid_value(
                "spec.template.metadata.labels",
                template_labels,
                "`selector` does not match template `labels`",
            )
        )
    for key, value in template_labels.items():
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                _invalid_value(
                    "spec.template.metadata.labels", value, f"a valid label value is required for {key!r}"
                )
            )
    containers = (template.get("spec") or {}).get("containers") or []
    if not containers:
        causes.append(_required("spec.template.spec.containers"))
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"spec.template.spec.containers[{index}]"
        container_name = container.get("name")
        if not container_name:
            causes.append(_required(f"{where}.name"))
        elif container_name in seen:
            causes.append(
                _Cause(
                    f"{where}.name",
                    "FieldValueDuplicate",
                    f"Duplicate value: {json.dumps(container_name)}",
                )
            )
        else:
            seen.add(str(container_name))
        if not container.get("image"):
            causes.append(_required(f"{where}.image"))
    return causes

# ---- controllers



def _default_pod_spec(spec: JSON) -> None:
    """The API server's defaulting for a pod spec, so stored templates compare like real ones."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in spec.get("containers") or []:
        if not isinstance(container, dict):
            continue
        image = str(container.get("image", ""))
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


# --------------------------------------------------------------------------------------------
# Seed objects


