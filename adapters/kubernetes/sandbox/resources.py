"""The resources the sandbox serves: paths, kinds, verbs and short names."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)


# Resources


@dataclass(frozen=True)
class _Resource:
    plural: str
    singular: str
    kind: str
    group: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    scalable: bool = False
    has_status: bool = True
    has_generation: bool = False
    version: str = "v1"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `pods`: how API server messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """`Deployment.apps`, `Pod`: how validation messages name a kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


_WORKLOAD_VERBS = ("get", "list", "patch", "update")

_RESOURCES: tuple[_Resource, ...] = (
    _Resource("namespaces", "namespace", "Namespace", "", False, ("get", "list"), ("ns",)),
    _Resource("nodes", "node", "Node", "", False, ("get", "list", "patch", "update"), ("no",)),
    _Resource("pods", "pod", "Pod", "", True, ("get", "list", "delete"), ("po",)),
    _Resource("services", "service", "Service", "", True, ("get", "list"), ("svc",)),
    _Resource(
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        "",
        True,
        ("get", "list"),
        ("pvc",),
    ),
    _Resource(
        "deployments",
        "deployment",
        "Deployment",
        "apps",
        True,
        _WORKLOAD_VERBS,
        ("deploy",),
        True,
        has_generation=True,
    ),
    _Resource(
        "statefulsets",
        "statefulset",
        "StatefulSet",
        "apps",
        True,
        _WORKLOAD_VERBS,
        ("sts",),
        True,
        has_generation=True,
    ),
    _Resource(
        "daemonsets",
        "daemonset",
        "DaemonSet",
        "apps",
        True,
        _WORKLOAD_VERBS,
        ("ds",),
        has_generation=True,
    ),
    _Resource(
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        "policy",
        True,
        ("get", "list", "patch", "update"),
        ("pdb",),
        has_generation=True,
    ),
    _Resource(
        "replicasets",
        "replicaset",
        "ReplicaSet",
        "apps",
        True,
        _WORKLOAD_VERBS,
        ("rs",),
        has_generation=True,
    ),
)

# autoscaling/v2: signoff refuses a scale that a HorizontalPodAutoscaler would undo (sandbox/autoscaling.py).
_RESOURCES += (
    _Resource(
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        "autoscaling",
        True,
        ("get", "list", "create", "patch", "update", "delete"),
        ("hpa",),
        has_generation=True,
        version="v2",
    ),
)

_BY_PATH: dict[tuple[str, str], _Resource] = {(r.group, r.plural): r for r in _RESOURCES}
_BY_KIND: dict[str, _Resource] = {r.kind: r for r in _RESOURCES}
_ALIASES: dict[str, _Resource] = {}
for _r in _RESOURCES:
    for _alias in (_r.kind, _r.plural, _r.singular, *_r.short_names):
        _ALIASES[_alias.lower()] = _r


def _resource_for(kind: str) -> _Resource:
    """Accept `Deployment`, `deployment`, `deployments` or `deploy` in the test hooks."""
    resource = _ALIASES.get(kind.lower())
    if resource is None:
        raise ValueError(f"the sandbox does not serve {kind!r}")
    return resource


# --------------------------------------------------------------------------------------------
# Errors as the API server writes them


