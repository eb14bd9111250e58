"""The card's change lines and who else manages a target: pure functions of the objects (issue 21, items 1, 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.domain import approvals
from core.domain.changes import (
    Autoscaled,
    Autoscaler,
    Preview,
    autoscaler_of,
    blocking_budgets,
    change_lines,
    delete_lines,
    drain_lines,
    gitops_warnings,
    refuse_if_autoscaled,
    rollback_lines,
    template_lines,
)
from core.domain.events import EventType
from core.domain.operations import parse_operation
from core.domain.policy import Person, Risk, SignRule
from core.domain.request_preview import with_preview

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def workload(*containers: tuple[str, str], replicas: int | None = 3, **meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"metadata": {}, "spec": {"containers": [
        {"name": name, "image": image} for name, image in containers]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": dict(meta), "spec": spec}


def test_a_scale_is_old_to_new_replicas() -> None:
    op = parse_operation("scale deployment/api --replicas=6 -n prod")
    assert change_lines(op, workload(("api", "a:1")), {"spec": {"replicas": 6}}) == ("replicas: 3 → 6",)
    assert change_lines(op, workload(("api", "a:1"), replicas=6), {"spec": {"replicas": 6}}) == (
        "replicas: 6 (unchanged)",)
    assert change_lines(op, workload(("api", "a:1"), replicas=None), {"spec": {"replicas": 6}}) == (
        "replicas: 1 → 6",)  # an unset replicas field is 1


def test_a_restart_is_restarted_at_set_only_when_the_dry_run_set_it() -> None:
    op = parse_operation("rollout restart deployment/api -n prod")
    before = workload(("api", "a:1"))
    after = workload(("api", "a:1"))
    after["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2026-12-01T10:00Z"}
    assert change_lines(op, before, after) == ("restartedAt: set",)
    assert change_lines(op, before, before) == ()


def test_a_rollback_lists_images_per_container_and_other_changes() -> None:
    before = workload(("api", "registry/api:v2"), ("sidecar", "envoy:1"))
    after = workload(("api", "registry/api:v1"), ("sidecar", "envoy:1"))
    after["spec"]["template"]["spec"]["containers"][1]["env"] = [{"name": "X", "value": "1"}]
    after["spec"]["template"]["spec"]["serviceAccountName"] = "old"
    assert rollback_lines(before, after, current=3, target=2) == (
        "template: revision 3 → revision 2",
        "image (api): registry/api:v2 → registry/api:v1",
        "env (sidecar): changed",
        "pod spec serviceAccountName: changed",
    )
    assert template_lines(before, workload(("api", "registry/api:v2"))) == ("container sidecar: removed",)
    assert rollback_lines(before, before, current=None, target=None) == ("pod template: unchanged",)


def test_cordon_delete_and_drain_lines() -> None:
    cordon = parse_operation("cordon node-1")
    assert change_lines(cordon, {"spec": {}}, {"spec": {"unschedulable": True}}) == ("unschedulable: false → true",)
    assert delete_lines("web-1", "deployment/web") == ("pod web-1: deleted (deployment/web recreates it)",)
    assert delete_lines("solo", None) == ("pod solo: deleted (no controller: nothing recreates it)",)
    pods = [f"prod/web-{i} (deployment/web)" for i in range(15)]
    lines = drain_lines({"spec": {}}, pods, ("PodDisruptionBudget prod/web (allows 0 …)",))
    assert lines[0] == "unschedulable: false → true"
    assert lines[1] == "evicts prod/web-0 (deployment/web)" and "evicts 3 more pod(s)" in lines
    assert lines[-1] == "blocked by PodDisruptionBudget prod/web (allows 0 …)"
    assert drain_lines({"spec": {"unschedulable": True}}, (), ()) == (
        "unschedulable: true (unchanged)", "evicts nothing (only DaemonSet and mirror pods run there)")


def pod(namespace: str, name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "labels": labels}}


def budget(namespace: str, name: str, selector: dict[str, Any] | None, allowed: int) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name}, "spec": {"selector": selector},
            "status": {"disruptionsAllowed": allowed}}


def test_a_budget_blocks_when_it_allows_fewer_disruptions_than_the_drain_evicts() -> None:
    pods = [pod("prod", "api-1", app="api"), pod("prod", "api-2", app="api"), pod("prod", "web-1", app="web")]
    budgets = [
        budget("prod", "api", {"matchLabels": {"app": "api"}}, 1),  # two of its pods: blocks
        budget("prod", "web", {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, 1),
        budget("staging", "api", {"matchLabels": {"app": "api"}}, 0),  # another namespace
        budget("prod", "none", None, 0),  # a null selector selects nothing
        budget("prod", "not-api", {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["api"]},
                                                        {"key": "app", "operator": "Exists"}]}, 0),
    ]
    assert blocking_budgets(pods, budgets) == (
        "PodDisruptionBudget prod/api (allows 1 disruption(s) now, the drain evicts 2 of its pods)",
        "PodDisruptionBudget prod/not-api (allows 0 disruption(s) now, the drain evicts 1 of its pods)",
    )


def test_the_autoscaler_is_the_one_naming_the_workload() -> None:
    hpas = [{"metadata": {"name": "other"}, "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "api"},
                                                     "maxReplicas": 4}},
            {"metadata": {"name": "api-hpa"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "api"},
                                                       "minReplicas": 3, "maxReplicas": 10}}]
    assert autoscaler_of("deployment", "api", hpas) == Autoscaler(name="api-hpa", min_replicas=3, max_replicas=10)
    assert autoscaler_of("deployment", "web", hpas) is None


def test_a_scale_of_an_autoscaled_target_is_refused_naming_the_hpa() -> None:
    preview = Preview(lines=("replicas: 3 → 20",), autoscaler=Autoscaler(name="api-hpa", min_replicas=3,
                                                                          max_replicas=10))
    with pytest.raises(Autoscaled) as refused:
        refuse_if_autoscaled(parse_operation("scale deployment/api --replicas=20 -n prod"), preview)
    assert refused.value.message.startswith(
        "prod/api is managed by HorizontalPodAutoscaler api-hpa (min 3, max 10), which would undo a scale within "
        "seconds; change the HPA instead")
    refuse_if_autoscaled(parse_operation("rollout restart deployment/api -n prod"), preview)  # fine
    refuse_if_autoscaled(parse_operation("scale deployment/api --replicas=20 -n prod"), Preview())


@pytest.mark.parametrize(("labels", "annotations", "expected"), [
    ({"argocd.argoproj.io/instance": "shop"}, {},
     ["managed by Argo CD application shop: a sync may revert a scale or rollback"]),
    ({}, {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/api"},
     ["managed by Argo CD application shop: a sync may revert a scale or rollback"]),
    ({"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}, {},
     ["managed by Flux Kustomization flux-system/apps: a sync may revert a scale or rollback"]),
    ({"helm.toolkit.fluxcd.io/name": "api"}, {},
     ["managed by Flux HelmRelease api: a sync may revert a scale or rollback"]),
    ({"app.kubernetes.io/managed-by": "Helm"}, {"meta.helm.sh/release-name": "api"},
     ["managed by Helm release api: a `helm upgrade` may revert a scale or rollback"]),
    ({"app.kubernetes.io/managed-by": "kustomize"}, {}, []),
    ({}, {}, []),
])
def test_gitops_owners_are_recognized(labels: dict[str, str], annotations: dict[str, str],
                                      expected: list[str]) -> None:
    assert list(gitops_warnings({"metadata": {"labels": labels, "annotations": annotations}})) == expected


def test_the_card_lines_add_the_note_and_the_warnings() -> None:
    preview = Preview(lines=("replicas: 3 → 6",), warnings=("managed by Argo CD application shop: …",))
    assert preview.card_lines() == ("replicas: 3 → 6", "⚠️ managed by Argo CD application shop: …")
    assert Preview(unavailable="503").card_lines() == ("could not be previewed: 503",)


def test_the_preview_rides_on_the_request_and_its_requested_event_not_on_its_digest() -> None:
    created = approvals.new_request(
        request_id="R-1", operation=parse_operation("scale deployment/api --replicas=6 -n prod"), action="scale",
        requested_by=Person(name="alice"), via="console", at=T0, risk=Risk.medium, stated_risk=None,
        rule=SignRule(quorum=1, approvers=("*",)), expire_after=timedelta(minutes=30), reason=None,
        incident_id=None, blast=None, proposal=None, places=())
    preview = Preview(lines=("replicas: 3 → 6",))
    shown = with_preview(created, preview)
    assert shown.request.preview == preview
    [event] = shown.events
    assert event.type is EventType.requested and event.detail.endswith("; change: replicas: 3 → 6")
    assert approvals.signed_digest(shown.request) == approvals.signed_digest(created.request) == event.digest
    assert with_preview(created, None) is created
