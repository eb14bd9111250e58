"""The pure parts of verification: what each workload status means, the pods' reasons, the texts."""

from __future__ import annotations

from typing import Any

from adapters.kubernetes import verify
from adapters.kubernetes.sandbox.status import restarts_after
from core.chat.cards import verified_note, verify_failed_note
from core.domain.approvals import RequestStatus
from core.domain.cluster import ClusterResult, PodTrouble, Progress
from core.domain.verify import poll_delay

SINCE = ClusterResult(summary="restarted", generation=5)


def deployment(*, generation: int = 5, observed: int = 5, replicas: int = 3, updated: int = 3, available: int = 3,
               total: int = 3, condition: str = "NewReplicaSetAvailable") -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas, "progressDeadlineSeconds": 600},
        "status": {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available,
                   "readyReplicas": available, "replicas": total,
                   "conditions": [{"type": "Progressing", "reason": condition}]},
    }


def test_a_deployment_rollout_is_done_only_as_kubectl_rollout_status_says() -> None:
    assert verify.deployment_progress(deployment(), SINCE).done
    assert not verify.deployment_progress(deployment(observed=4), SINCE).done  # not yet seen by the controller
    assert not verify.deployment_progress(deployment(updated=2), SINCE).done
    old_left = verify.deployment_progress(deployment(total=4, available=3), SINCE)
    assert not old_left.done and old_left.counts() == "3/3 updated · 2/3 available"
    stuck = verify.deployment_progress(
        deployment(updated=3, available=3, total=6, condition="ProgressDeadlineExceeded"), SINCE)
    assert stuck.failed and stuck.reason == "ProgressDeadlineExceeded" and stuck.deadline_s == 600
    assert stuck.counts() == "3/3 updated · 0/3 available" and stuck.fraction() == (0, 3)


def test_scale_waits_for_the_ready_count_and_the_extra_pods_to_go() -> None:
    down = deployment(replicas=2, updated=2, available=2, total=3)
    assert not verify.deployment_progress(down, SINCE, scale_to=2).done
    assert verify.deployment_progress(deployment(replicas=2, updated=2, available=2, total=2), SINCE, scale_to=2).done


def test_statefulset_daemonset_node_and_deleted_pod() -> None:
    sts = {"metadata": {"generation": 2}, "spec": {"replicas": 2},
           "status": {"observedGeneration": 2, "currentRevision": "a", "updateRevision": "b", "readyReplicas": 2,
                      "replicas": 2}}
    assert not verify.stateful_set_progress(sts, SINCE.model_copy(update={"generation": 2})).done
    sts["status"]["currentRevision"] = "b"
    assert verify.stateful_set_progress(sts, SINCE.model_copy(update={"generation": 2})).done
    ds = {"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "desiredNumberScheduled": 3,
                                                    "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert not verify.daemon_set_progress(ds, SINCE.model_copy(update={"generation": 1})).done
    node = {"metadata": {"name": "node-2"}, "spec": {"unschedulable": True}}
    assert verify.node_progress(node, unschedulable=True).done
    assert not verify.node_progress(node, unschedulable=False).done
    deleted = ClusterResult(summary="deleted", uid="u1", owner="ReplicaSet/api-7c9")
    terminating = {"metadata": {"uid": "u1", "deletionTimestamp": "now"}}
    owner_ready = {"spec": {"replicas": 3}, "status": {"readyReplicas": 3}}
    assert not verify.replacement_progress(terminating, owner_ready, deleted).done
    assert verify.replacement_progress(None, owner_ready, deleted).done
    assert not verify.replacement_progress(None, {"spec": {"replicas": 3}, "status": {"readyReplicas": 2}},
                                           deleted).done
    bare = ClusterResult(summary="deleted", uid="u1")
    assert verify.replacement_progress(None, None, bare).done


def test_pod_troubles_name_the_reasons_and_restarts() -> None:
    def pod(name: str, state: dict[str, Any], restarts: int = 0, ready: bool = False) -> dict[str, Any]:
        return {"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
                "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                           "containerStatuses": [{"ready": ready, "restartCount": restarts, "state": state}]}}

    troubles = verify.pod_troubles([
        pod("api-x1", {"waiting": {"reason": "CrashLoopBackOff"}}, restarts=5),
        pod("api-x2", {"waiting": {"reason": "ImagePullBackOff"}}),
        pod("api-ok", {"running": {}}, ready=True),
    ])
    assert [t.text() for t in troubles] == ["api-x1 CrashLoopBackOff (restarted 5×)", "api-x2 ImagePullBackOff"]


def test_the_texts_of_the_end_of_verification() -> None:
    ready = Progress(done=True, desired=3, ready=3, achieved="3/3 pods ready")
    assert verified_note(42.4, ready) == "verified in 42 s: 3/3 pods ready"
    pods = [PodTrouble(name="api-7c9-x1", reason="CrashLoopBackOff", restarts=5),
            PodTrouble(name="api-7c9-x2", reason="ImagePullBackOff")]
    assert verify_failed_note(600, "ProgressDeadlineExceeded", pods) == (
        "failed after 10m: ProgressDeadlineExceeded; api-7c9-x1 CrashLoopBackOff (restarted 5×), "
        "api-7c9-x2 ImagePullBackOff")


def test_verifying_is_not_terminal_and_looks_back_off() -> None:
    assert not RequestStatus.verifying.terminal
    assert [poll_delay(n).total_seconds() for n in range(11)] == [1, 1, 2, 3, 5, 8, 13, 20, 30, 30, 30]
    assert [restarts_after(s) for s in (0, 9, 10, 29, 30, 70)] == [1, 1, 2, 2, 3, 4]
