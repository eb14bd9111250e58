"""What a request would change, as `field: old → new` lines for the card, from the objects before and after
a server-side dry run (the adapter supplies them as plain JSON mappings); nothing here does I/O.

Also who else manages the target: a HorizontalPodAutoscaler (which would undo a scale within seconds),
Argo CD, Flux or Helm (a sync or an upgrade may revert a scale or a rollback).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.domain.operations import (
    CordonOp,
    Operation,
    RestartOp,
    ScaleOp,
    UncordonOp,
)
from core.errors import SignoffError

ARROW = "→"
MAX_LINES = 12  # a drain of a busy node lists at most this many pods; the rest are counted


class PreviewRefused(SignoffError):
    """The server-side dry run failed in a definite way (NotFound, Invalid, Forbidden, no previous revision),
    or the target's spec could not be read: nobody is asked to sign blind."""

    code = "dry_run_refused"


class Autoscaled(SignoffError):
    """A scale of a target that a HorizontalPodAutoscaler manages: the autoscaler would undo it."""

    code = "autoscaled"


class Autoscaler(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    min_replicas: int
    max_replicas: int

    def describe(self) -> str:
        return f"HorizontalPodAutoscaler {self.name} (min {self.min_replicas}, max {self.max_replicas})"


class Preview(BaseModel):
    """The change a request would make, as the dry run at request time showed it."""

    model_config = ConfigDict(frozen=True)

    lines: tuple[str, ...] = ()
    # Who else manages the target: "managed by Argo CD application shop: a sync may revert a scale or rollback".
    warnings: tuple[str, ...] = ()
    autoscaler: Autoscaler | None = None
    # Set when the dry run could not be made for a transient reason (5xx, 429, a timeout): the request stands.
    unavailable: str | None = None

    def card_lines(self) -> tuple[str, ...]:
        """What the card's `Change` field lists."""
        lines = list(self.lines)
        if self.unavailable is not None:
            lines.append(f"could not be previewed: {self.unavailable}")
        return (*lines, *(f"⚠️ {w}" for w in self.warnings))


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def _spec(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("spec") or {}


def _change(field: str, old: object, new: object) -> str:
    if old == new:
        return f"{field}: {_text(old)} (unchanged)"
    return f"{field}: {_text(old)} {ARROW} {_text(new)}"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else str(value)


def _containers(workload: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    template = _spec(workload).get("template") or {}
    return {str(c.get("name")): c for c in _spec(template).get("containers") or [] if isinstance(c, Mapping)}


def scale_lines(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, ...]:
    """`replicas: 3 → 6`, from the workload (or its Scale) before and the dry-run Scale after."""
    old = _spec(before).get("replicas")
    return (_change("replicas", 1 if old is None else old, _spec(after).get("replicas")),)


def restart_lines(before: Mapping[str, Any], after: Mapping[str, Any], annotation: str) -> tuple[str, ...]:
    """`restartedAt: set` when the dry run shows the template annotation that rolls the pods."""
    def value(obj: Mapping[str, Any]) -> object:
        return (_meta(_spec(obj).get("template")).get("annotations") or {}).get(annotation)
    return ("restartedAt: set",) if value(after) is not None and value(after) != value(before) else ()


def template_lines(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, ...]:
    """Per container: `image (api): registry/api:v2 → registry/api:v1`, and what else in it changes."""
    old, new = _containers(before), _containers(after)
    lines: list[str] = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            lines.append(f"container {name}: removed")
            continue
        if name not in old:
            lines.append(f"container {name}: added ({new[name].get('image')})")
            continue
        if old[name].get("image") != new[name].get("image"):
            lines.append(f"image ({name}): {old[name].get('image')} {ARROW} {new[name].get('image')}")
        others = sorted(k for k in old[name].keys() | new[name].keys()
                        if k != "image" and old[name].get(k) != new[name].get(k))
        if others:
            lines.append(f"{', '.join(others)} ({name}): changed")
    pod_old = {k: v for k, v in _spec(_spec(before).get("template")).items() if k != "containers"}
    pod_new = {k: v for k, v in _spec(_spec(after).get("template")).items() if k != "containers"}
    changed = sorted(k for k in pod_old.keys() | pod_new.keys() if pod_old.get(k) != pod_new.get(k))
    if changed:
        lines.append(f"pod spec {', '.join(changed)}: changed")
    return tuple(lines)


def rollback_lines(before: Mapping[str, Any], after: Mapping[str, Any], *, current: int | None,
                   target: int | None) -> tuple[str, ...]:
    """The images (and other template fields) the rollback restores, and which revision it returns to."""
    head = (f"template: revision {current} {ARROW} revision {target}",) if target is not None else ()
    return (*head, *(template_lines(before, after) or ("pod template: unchanged",)))


def unschedulable_lines(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, ...]:
    """`unschedulable: false → true` for a cordon (and back for an uncordon)."""
    return (_change("unschedulable", bool(_spec(before).get("unschedulable")),
                    bool(_spec(after).get("unschedulable"))),)


def delete_lines(name: str, owner: str | None) -> tuple[str, ...]:
    """`pod web-7d9f: deleted (deployment/web recreates it)`."""
    then = f"{owner} recreates it" if owner else "no controller: nothing recreates it"
    return (f"pod {name}: deleted ({then})",)


def drain_lines(node: Mapping[str, Any], evictions: Sequence[str], blocking: Sequence[str]) -> tuple[str, ...]:
    """A drain: the cordon, each pod it would evict (`ns/name (owner)`), and the budgets that would block."""
    lines = [_change("unschedulable", bool(_spec(node).get("unschedulable")), True)]
    shown = list(evictions)[:MAX_LINES]
    lines += [f"evicts {pod}" for pod in shown]
    if len(evictions) > len(shown):
        lines.append(f"evicts {len(evictions) - len(shown)} more pod(s)")
    if not evictions:
        lines.append("evicts nothing (only DaemonSet and mirror pods run there)")
    lines += [f"blocked by {budget}" for budget in blocking]
    return tuple(lines)


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a pod's labels; null selects nothing."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if ((operator == "In" and labels.get(key) not in values)
                or (operator == "NotIn" and present and labels.get(key) in values)
                or (operator == "Exists" and not present) or (operator == "DoesNotExist" and present)):
            return False
    return True


def blocking_budgets(pods: Iterable[Mapping[str, Any]], budgets: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """PodDisruptionBudgets that allow fewer disruptions than the drain would evict of their pods now."""
    pods = list(pods)
    found: list[str] = []
    for budget in budgets:
        meta = _meta(budget)
        covered = [p for p in pods if _meta(p).get("namespace") == meta.get("namespace")
                   and _selects(_spec(budget).get("selector"), _meta(p).get("labels") or {})]
        allowed = int((budget.get("status") or {}).get("disruptionsAllowed") or 0)
        if covered and allowed < len(covered):
            found.append(f"PodDisruptionBudget {meta.get('namespace')}/{meta.get('name')} (allows {allowed} "
                         f"disruption(s) now, the drain evicts {len(covered)} of its pods)")
    return tuple(found)


def change_lines(op: Operation, before: Mapping[str, Any], after: Mapping[str, Any], *,
                 restart_annotation: str = "kubectl.kubernetes.io/restartedAt") -> tuple[str, ...]:
    """The lines for a scale, a restart, a cordon or an uncordon: one write, dry-run as one call."""
    if isinstance(op, ScaleOp):
        return scale_lines(before, after)
    if isinstance(op, RestartOp):
        return restart_lines(before, after, restart_annotation)
    if isinstance(op, CordonOp | UncordonOp):
        return unschedulable_lines(before, after)
    return ()


# ---- who else manages the target

ARGO_INSTANCE = "argocd.argoproj.io/instance"
ARGO_TRACKING = "argocd.argoproj.io/tracking-id"
FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io/name"
FLUX_HELM = "helm.toolkit.fluxcd.io/name"
MANAGED_BY = "app.kubernetes.io/managed-by"
HELM_RELEASE = "meta.helm.sh/release-name"
REVERTS = "a sync may revert a scale or rollback"


def autoscaler_of(kind: str, name: str, autoscalers: Iterable[Mapping[str, Any]]) -> Autoscaler | None:
    """The autoscaling/v2 HorizontalPodAutoscaler whose scaleTargetRef names this workload, if any."""
    for hpa in autoscalers:
        ref = _spec(hpa).get("scaleTargetRef") or {}
        if str(ref.get("kind", "")).lower() == kind.lower() and ref.get("name") == name:
            return Autoscaler(name=str(_meta(hpa).get("name")), min_replicas=int(_spec(hpa).get("minReplicas") or 1),
                              max_replicas=int(_spec(hpa).get("maxReplicas") or 0))
    return None


def gitops_warnings(workload: Mapping[str, Any]) -> tuple[str, ...]:
    """Argo CD, Flux and Helm, recognized by the labels and annotations they put on what they manage."""
    labels = _meta(workload).get("labels") or {}
    annotations = _meta(workload).get("annotations") or {}
    found: list[str] = []
    argo = labels.get(ARGO_INSTANCE) or str(annotations.get(ARGO_TRACKING) or "").split(":", 1)[0]
    if argo:
        found.append(f"managed by Argo CD application {argo}: {REVERTS}")
    for label, what in ((FLUX_KUSTOMIZATION, "Kustomization"), (FLUX_HELM, "HelmRelease")):
        if labels.get(label):
            namespace = labels.get(label.replace("/name", "/namespace"))
            where = f"{namespace}/" if namespace else ""
            found.append(f"managed by Flux {what} {where}{labels[label]}: {REVERTS}")
    if str(labels.get(MANAGED_BY, "")).lower() == "helm":
        release = annotations.get(HELM_RELEASE)
        named = f" release {release}" if release else ""
        found.append(f"managed by Helm{named}: a `helm upgrade` may revert a scale or rollback")
    return tuple(found)


def refuse_if_autoscaled(op: Operation, preview: Preview | None) -> None:
    """A scale that a HorizontalPodAutoscaler would undo within seconds is refused, naming it and its bounds."""
    if preview is None or preview.autoscaler is None or not isinstance(op, ScaleOp):
        return
    hpa = preview.autoscaler
    raise Autoscaled(
        f"{op.namespace}/{op.name} is managed by {hpa.describe()}, which would undo a scale within seconds; "
        f"change the HPA instead (e.g. `kubectl patch hpa {hpa.name} -n {op.namespace} -p "
        f"'{{\"spec\":{{\"minReplicas\":{op.replicas}}}}}'`), or ask for a restart or a rollback.")


def autoscaler_note(autoscaler: Autoscaler) -> str:
    """The card's line for a restart or rollback of an autoscaled target."""
    return f"autoscaled by {autoscaler.describe()}: its replica count is the HPA's to set"
