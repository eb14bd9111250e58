"""The fingerprint of a target (core/domain/pinning.py): what makes a request stale and what does not."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.kubernetes.pin import changed_by, observed_workload
from adapters.kubernetes.rollback import plan_rollback, rollback_target
from core.domain import approvals
from core.domain.approvals import RequestStatus, signed_digest
from core.domain.cluster import ClusterRejected
from core.domain.operations import RollbackOp, parse_operation
from core.domain.pinning import RESTARTED_AT, Observed, drift, pin_of, template_fingerprint
from core.domain.policy import Person, Risk, SignRule
from core.domain.staleness import queue_key, waiting, went_stale
from core.errors import NotPending

AT = datetime(2026, 12, 5, 10, 40, tzinfo=UTC)


def deployment(image: str = "registry/api:v2", replicas: int = 3, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "api", "namespace": "prod", "uid": "u-1", "resourceVersion": "41", "generation": 7,
                     "managedFields": [
                         {"manager": "kubectl-client-side-apply", "operation": "Update",
                          "time": "2026-12-05T10:00:00Z"},
                         {"manager": "argocd-controller", "operation": "Update", "time": "2026-12-05T10:41:00Z"},
                         {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                          "time": "2026-12-05T09:00:00Z"}]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}, "annotations": dict(annotations)},
                              "spec": {"containers": [{"name": "api", "image": image}]}}},
        "status": {"replicas": replicas, "readyReplicas": replicas, "observedGeneration": 7},
    }


def fingerprint(obj: dict[str, Any]) -> str:
    pin = pin_of(observed_workload(obj))
    assert pin is not None
    return pin.fingerprint


def test_the_fingerprint_ignores_replicas_status_resource_version_and_restarted_at() -> None:
    base = fingerprint(deployment())
    assert fingerprint(deployment(replicas=9)) == base
    noisy = deployment()
    noisy["metadata"]["resourceVersion"] = "99"
    noisy["metadata"]["generation"] = 12
    noisy["status"] = {"replicas": 1}
    assert fingerprint(noisy) == base
    assert fingerprint(deployment(**{RESTARTED_AT: "2026-12-05T10:41:00Z"})) == base


def test_the_fingerprint_changes_with_the_image_and_any_other_template_field() -> None:
    base = fingerprint(deployment())
    assert fingerprint(deployment(image="registry/api:v9")) != base
    env = deployment()
    env["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "X", "value": "1"}]
    assert fingerprint(env) != base
    assert fingerprint(deployment(**{"other": "x"})) != base


def test_drift_says_what_changed_and_who_changed_it() -> None:
    before = pin_of(observed_workload(deployment()))
    now_obj = deployment(image="registry/api:v9")
    observed = observed_workload(now_obj)
    assert before is not None
    assert drift(before, pin_of(observed_workload(deployment(replicas=1)))) is None
    text = drift(before, pin_of(observed), observed=observed)
    assert text == ("image (api): registry/api:v2 → registry/api:v9 "
                    "(changed by argocd-controller at 2026-12-05T10:41:00Z)")
    env = deployment()
    env["spec"]["template"]["spec"]["containers"][0]["args"] = ["--fast"]
    assert drift(before, pin_of(observed_workload(env))) == "the pod template changed (not its images)"


def test_the_most_recent_update_names_the_changer() -> None:
    assert changed_by(deployment()) == ("argocd-controller", "2026-12-05T10:41:00Z")
    assert changed_by({"metadata": {}}) == (None, None)


def replica_set(name: str, rev: int, image: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": {"deployment.kubernetes.io/revision": str(rev)},
                         "ownerReferences": [{"controller": True, "uid": "u-1"}]},
            "spec": {"template": {"metadata": {"labels": {"app": "api", "pod-template-hash": name[-3:]}},
                                  "spec": {"containers": [{"name": "api", "image": image}]}}}}


def test_a_rollback_pins_its_target_revision_and_goes_to_exactly_it() -> None:
    dep = deployment(image="registry/api:v3")
    dep["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "3"}
    sets = [replica_set("api-aaa", 1, "registry/api:v1"), replica_set("api-bbb", 2, "registry/api:v2"),
            replica_set("api-ccc", 3, "registry/api:v3")]
    assert rollback_target(dep, sets) == (2, "api-bbb")
    signed = pin_of(Observed(template=dep["spec"]["template"], revision=2, revision_name="api-bbb"))
    moved = pin_of(Observed(template=dep["spec"]["template"], revision=3, revision_name="api-ccc"))
    assert signed is not None and moved is not None and signed.fingerprint != moved.fingerprint
    assert drift(signed, moved) == "rollback target: revision 2 (api-bbb) → revision 3 (api-ccc)"
    pinned = RollbackOp(name="api", namespace="prod", to_replica_set="api-aaa")
    plan = plan_rollback(pinned, dep, sets)
    assert not isinstance(plan, type(None)) and getattr(plan, "revision", None) == 1
    assert "to_replica_set" not in pinned.model_dump()  # never stored nor signed as such: the pin is
    with pytest.raises(ClusterRejected, match=r"api-zzz.*is gone"):
        plan_rollback(RollbackOp(name="api", namespace="prod", to_replica_set="api-zzz"), dep, sets)


def request(pin_image: str | None = "registry/api:v2") -> approvals.ApprovalRequest:
    pin = pin_of(observed_workload(deployment(image=pin_image))) if pin_image else None
    return approvals.new_request(
        request_id="R-1", operation=parse_operation("rollout restart deployment/api -n prod"),
        action="rollout restart deployment/api -n prod", requested_by=Person(name="alice"), via="console", at=AT,
        risk=Risk.medium, stated_risk=None, rule=SignRule(quorum=1, approvers=("sre",)),
        expire_after=timedelta(hours=1), reason=None, incident_id=None, blast=None, proposal=None, places=(),
        pin=pin,
    ).request


def test_the_signature_digest_covers_the_fingerprint() -> None:
    signed = request()
    tampered = signed.model_copy(update={"pin": signed.pin.model_copy(update={"fingerprint": "0" * 64})
                                         if signed.pin else None})
    assert signed_digest(tampered) != signed_digest(signed)
    unpinned = request(pin_image=None)
    assert "pin" not in unpinned.model_dump(exclude_none=True)


def test_pending_and_approved_go_stale_nothing_else_does() -> None:
    pending = request()
    stale, events = went_stale(pending, at=AT, what="image (api): v2 → v9")
    assert stale.status is RequestStatus.stale and stale.status.terminal
    assert stale.outcome is not None and "image (api): v2 → v9" in stale.outcome.summary
    assert [e.type for e in events] == ["stale"]
    approved = pending.model_copy(update={"status": RequestStatus.approved, "approved_at": AT})
    assert went_stale(approved, at=AT, what="x").request.status is RequestStatus.stale
    for status in (RequestStatus.executing, RequestStatus.verifying, RequestStatus.succeeded):
        with pytest.raises(NotPending):
            went_stale(pending.model_copy(update={"status": status}), at=AT, what="x")
    waited = waiting(approved, at=AT, behind="R-12").request
    assert waited.waiting_for == "R-12" and waited.version == approved.version + 1


def test_the_queue_key_is_cluster_kind_namespace_name() -> None:
    one = request()
    assert queue_key(one) == "/deployment/prod/api"
    assert queue_key(one.model_copy(update={"cluster": "eu-1"})) == "eu-1/deployment/prod/api"
    node = one.model_copy(update={"operation": parse_operation("cordon node-1")})
    assert queue_key(node) is None
    assert template_fingerprint(copy.deepcopy(deployment()["spec"]["template"])) == template_fingerprint(
        deployment()["spec"]["template"])
