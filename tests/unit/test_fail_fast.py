"""Failing fast, judged from one look (pure): restarts, stuck reasons, which pods are new, progress notes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.kubernetes.verify import new_pods, pod_state
from core.app.progress_notes import ProgressNotes
from core.chat.messages import MessageKind
from core.domain.approvals import ApprovalRequest
from core.domain.cluster import PodTrouble
from core.domain.fail_fast import judge, said_once
from core.domain.request_parts import Place

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULES: dict[str, Any] = {"max_restarts": 3, "stuck_after": timedelta(minutes=2)}


def test_a_pod_restarted_max_restarts_times_fails_and_is_named_with_its_last_termination() -> None:
    pods = (PodTrouble(name="api-1", reason="CrashLoopBackOff", restarts=3, last_exit=1, last_reason="Error",
                       last_message="boom"), PodTrouble(name="api-2", reason="Ready", restarts=0))
    verdict = judge(pods, now=T0, stuck_since={}, **RULES)
    assert verdict.reason == "a new pod restarted 3 times or more ([verify] max_restarts)"
    assert [p.name for p in verdict.pods] == ["api-1"]
    assert verdict.pods[0].text() == "api-1 CrashLoopBackOff (restarted 3×), last terminated Error exit 1: boom"


def test_fewer_restarts_wait_and_a_stuck_pod_fails_only_after_stuck_after() -> None:
    pods = (PodTrouble(name="api-1", reason="ErrImagePull"),)
    first = judge(pods, now=T0, stuck_since={}, **RULES)
    assert first.reason is None and first.stuck_since == {"api-1": T0}
    # the reason changes within the stuck family: the clock keeps running
    later = (PodTrouble(name="api-1", reason="ImagePullBackOff"),)
    almost = judge(later, now=T0 + timedelta(seconds=119), stuck_since=first.stuck_since, **RULES)
    assert almost.reason is None
    stuck = judge(later, now=T0 + timedelta(minutes=2), stuck_since=almost.stuck_since, **RULES)
    assert stuck.reason == "a new pod waited 2m or more in ImagePullBackOff ([verify] stuck_after)"
    # a pod that left the stuck reasons starts afresh
    recovered = judge((PodTrouble(name="api-1", reason="Running"),), now=T0 + timedelta(minutes=5),
                      stuck_since=stuck.stuck_since, **RULES)
    assert recovered.reason is None and recovered.stuck_since == {}


def test_a_termination_shared_by_several_pods_is_told_once() -> None:
    same = {"reason": "CrashLoopBackOff", "restarts": 3, "last_exit": 1, "last_reason": "Error", "last_message": "x"}
    pods = said_once([PodTrouble(name="a", **same), PodTrouble(name="b", **same)])
    assert [p.text() for p in pods] == ["a CrashLoopBackOff (restarted 3×), last terminated Error exit 1: x",
                                        "b CrashLoopBackOff (restarted 3×)"]


def test_a_pod_merely_starting_is_never_stuck() -> None:
    pods = (PodTrouble(name="api-1", reason="ContainerCreating"), PodTrouble(name="api-2", reason="NotReady"))
    verdict = judge(pods, now=T0 + timedelta(hours=1), stuck_since={"api-1": T0}, **RULES)
    assert verdict.reason is None


def _pod(name: str, template: str, created: str, *, ready: bool = True, restarts: int = 0,
         waiting: str | None = None, terminating: bool = False) -> dict[str, Any]:
    state: dict[str, Any] = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created, "labels": {"pod-template-hash": template}}
    if terminating:
        meta["deletionTimestamp"] = created
    return {"metadata": meta, "status": {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [{"name": "api", "ready": ready, "restartCount": restarts, "state": state,
                               "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "message": "oops"}}
                               if restarts else {}}]}}


def test_the_new_pods_are_those_of_the_newest_template_and_old_crash_loops_are_not_judged() -> None:
    pods = [
        _pod("api-old-1", "old", "2026-01-01T10:00:00Z", ready=False, restarts=9, waiting="CrashLoopBackOff"),
        _pod("api-new-1", "new", "2026-01-01T10:05:00Z", ready=False, restarts=1, waiting="CrashLoopBackOff"),
        _pod("api-new-2", "new", "2026-01-01T10:05:01Z"),
        _pod("api-new-0", "new", "2026-01-01T10:04:59Z", terminating=True),
    ]
    found = new_pods(pods)
    assert [(p.name, p.reason, p.restarts) for p in found] == [("api-new-1", "CrashLoopBackOff", 1),
                                                               ("api-new-2", "Ready", 0)]
    assert found[0].last_exit == 2 and found[0].last_message == "oops"
    assert pod_state(pods[0]).short() == "api-old-1: CrashLoopBackOff (restarts 9)"
    assert new_pods([]) == ()


def test_progress_notes_edit_one_message_and_post_a_new_one_at_most_each_minute() -> None:
    notes = ProgressNotes()
    request = ApprovalRequest.model_construct(id="R-7", places=(Place(platform="slack", channel="C1"),))
    crash = (PodTrouble(name="api-1", reason="CrashLoopBackOff", restarts=1),)
    (posted,) = notes.messages(request, crash, T0)
    assert posted.kind is MessageKind.thread and posted.anchor_as == "R-7:progress:1" and posted.card is not None
    assert posted.card.text == "new pods: api-1: CrashLoopBackOff (restarts 1)"
    assert notes.messages(request, crash, T0 + timedelta(seconds=5)) == []  # nothing new: nothing said
    again = (PodTrouble(name="api-1", reason="CrashLoopBackOff", restarts=2),)
    (edit,) = notes.messages(request, again, T0 + timedelta(seconds=30))
    assert edit.kind is MessageKind.card_update and edit.key == "R-7:progress:1"
    assert edit.card is not None and "(restarts 2)" in edit.card.text
    third = (PodTrouble(name="api-1", reason="CrashLoopBackOff", restarts=3),)
    (fresh,) = notes.messages(request, third, T0 + timedelta(seconds=61))
    assert fresh.kind is MessageKind.thread and fresh.anchor_as == "R-7:progress:2"
    assert notes.messages(request, (), T0 + timedelta(minutes=5)) == []
