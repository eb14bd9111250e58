"""Verification that fails fast and says why, against the sandbox through the official client: a new pod
restarted `[verify] max_restarts` times or stuck `[verify] stuck_after` in an image or config error fails
the request at once, naming the pods, their reasons and their last termination message, with the way
back proposed right then; a good rollout is followed by watches (counted at the API server), a broken
watch falls back to polling; the progress message is edited in place on Slack."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.bootstrap import App
from bot.chats.discord import start_discord
from core.domain.approvals import ApprovalRequest, Place, RequestStatus
from core.domain.operations import RollbackOp
from core.domain.policy import Person
from testkit.fakes.discord import FakeDiscord
from testkit.support import MovableClock, make_settings, running_app
from testkit.support.discord import ALICE as D_ALICE
from testkit.support.discord import BOB as D_BOB
from testkit.support.discord import click, command, settings_for, wait_card
from testkit.support.policy import team_policy
from testkit.support.slack import ALICE, BOB, slack_world

CONSOLE = Place(platform="console", channel="console")
FAIL = "sandbox.signoff.dev/fail"
FAIL_MESSAGE = "sandbox.signoff.dev/fail-message"


async def _run(app: App, action: str) -> ApprovalRequest:
    request = await app.service.request(action, by=Person(name="alice"), via="console", origin=CONSOLE)
    for signer in ("bob", "carol"):
        if (await app.service.get(request.id)).status is RequestStatus.pending:
            await app.service.sign(request.id, by=Person(name=signer), via="console")
    await app.execution.run_approved()
    return await app.service.get(request.id)


def _annotate(app: App, kind: str, namespace: str, name: str, annotations: dict[str, str]) -> None:
    obj = app.sandbox.get(kind, namespace, name)
    obj["metadata"].setdefault("annotations", {}).update(annotations)
    app.sandbox.put(obj)


async def _later(app: App, clock: MovableClock, seconds: float) -> None:
    """Time passes in the sandbox and for signoff; what the watches heard of is looked at."""
    app.sandbox.advance(seconds)
    clock.advance(seconds=seconds)
    for _ in range(5):
        await asyncio.sleep(0.05)
        await app.verification.run_due()


def _calls_after_the_change(app: App, name: str) -> list[Any]:
    """What the API server was asked about the workload and its pods after the real PATCH (server side)."""
    requests = app.sandbox.requests
    patched = max(i for i, r in enumerate(requests)
                  if r.method == "PATCH" and r.path.endswith(f"/deployments/{name}") and "dryRun" not in r.query)
    return [r for r in requests[patched + 1:] if r.path.endswith(f"/deployments/{name}") or r.path.endswith("/pods")
            or r.query.get("fieldSelector") == f"metadata.name={name}"]


async def test_a_crash_looping_rollout_fails_at_max_restarts_naming_pods_and_the_way_back_comes_at_once(
        database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock, policy="[verify]\nmax_restarts = 2\n") as app:
        app.sandbox.set_restart_interval(2.0)
        _annotate(app, "deployment", "prod", "api", {FAIL: "CrashLoopBackOff",
                                                     FAIL_MESSAGE: "panic: dial tcp db:5432: connection refused"})
        request = await _run(app, "rollout restart deployment/api -n prod")
        assert request.status is RequestStatus.verifying
        await _later(app, clock, 1.0)
        assert (await app.service.get(request.id)).status is RequestStatus.verifying  # one restart so far
        await _later(app, clock, 1.5)  # the second restart, at 2 s: far before the 10-minute deadline
        failed = await app.service.get(request.id)
        assert failed.status is RequestStatus.failed
        summary = failed.outcome.summary if failed.outcome else ""
        assert "failed after 2 s: " in summary and "restarted 2 times or more ([verify] max_restarts)" in summary
        new_pods = sorted(p["metadata"]["name"] for p in app.sandbox.objects("pod", "prod", "app=api")
                          if p["status"]["containerStatuses"][0]["restartCount"] >= 2)
        assert new_pods
        for pod in new_pods:
            assert f"{pod} CrashLoopBackOff (restarted 2×)" in summary, summary
        # their last termination, told once for the pods that died the same way
        assert summary.count(", last terminated Error exit 1: panic: dial tcp db:5432: connection refused") == 1
        # the way back is proposed right then, as a pending request carrying the evidence
        (back,) = [r for r in await app.service.pending() if r.id != request.id]
        assert isinstance(back.operation, RollbackOp) and back.proposal is not None
        assert "CrashLoopBackOff" in back.proposal.rationale


@pytest.mark.parametrize("fault", ["ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName"])
async def test_a_new_pod_stuck_past_stuck_after_fails(database_url: str, fault: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock, policy='[verify]\nstuck_after = "5s"\n') as app:
        _annotate(app, "deployment", "prod", "api", {FAIL: fault})
        request = await _run(app, "rollout restart deployment/api -n prod")
        assert request.status is RequestStatus.verifying
        await _later(app, clock, 3.0)
        assert (await app.service.get(request.id)).status is RequestStatus.verifying
        await _later(app, clock, 3.0)
        failed = await app.service.get(request.id)
        assert failed.status is RequestStatus.failed, failed.verification
        summary = failed.outcome.summary if failed.outcome else ""
        shown = "ErrImagePull" if fault == "ImagePullBackOff" else fault
        assert f"waited 5s or more in {shown} ([verify] stuck_after)" in summary, summary
        assert f"{shown}; api-" in summary or f" {shown}, " in summary or summary.endswith(shown), summary


async def _until_ended(app: App, request_id: str, within: float) -> ApprovalRequest:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        request = await app.service.get(request_id)
        if request.status.terminal:
            return request
        await asyncio.sleep(0.02)
    return await app.service.get(request_id)


async def test_a_good_rollout_is_followed_by_watches_in_three_calls(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as app:
        app.sandbox.set_ready_delay(1.0)
        async with app.background():
            request = await _run(app, "rollout restart deployment/api -n prod")
            started = time.monotonic()
            done = await _until_ended(app, request.id, within=10.0)
            took = time.monotonic() - started
        assert done.status is RequestStatus.succeeded, done.outcome
        assert took < 1.8, took  # woken by the watch, not by the next poll
        calls = _calls_after_the_change(app, "api")
        watches = [c for c in calls if c.query.get("watch") == "true"]
        assert len(calls) <= 3, calls
        assert len(watches) == 2, calls
        assert any(c.query.get("fieldSelector") == "metadata.name=api" for c in watches)
        assert any(c.query.get("labelSelector") == "app=api" and c.query.get("resourceVersion") for c in watches)


async def test_a_broken_watch_falls_back_to_polling_and_still_ends(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        app.sandbox.set_ready_delay(5.0)
        request = await _run(app, "rollout restart deployment/api -n prod")
        assert request.status is RequestStatus.verifying
        app.sandbox.cut_watches()  # every open watch ends with 410 Gone
        await asyncio.sleep(0.2)
        before = len(_calls_after_the_change(app, "api"))
        await _later(app, clock, 2.0)
        assert (await app.service.get(request.id)).status is RequestStatus.verifying
        await _later(app, clock, 4.0)
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.succeeded, done.outcome
        polled = _calls_after_the_change(app, "api")[before:]
        assert any(r.method == "GET" and r.path.endswith("/deployments/api") for r in polled), polled
        assert not any(r.query.get("watch") == "true" for r in polled), polled


async def test_a_watch_refused_at_the_start_falls_back_to_polling(database_url: str) -> None:
    clock = MovableClock()
    async with running_app(make_settings(database_url), clock=clock) as app:
        app.sandbox.set_ready_delay(2.0)
        app.sandbox.break_watches(1)
        request = await _run(app, "rollout restart deployment/api -n prod")
        assert request.status is RequestStatus.verifying
        await _later(app, clock, 3.0)
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.succeeded, done.outcome


POLICY = team_policy(slack={"alice": ALICE, "bob": BOB}) + "\n[verify]\nmax_restarts = 6\n"


async def test_the_progress_message_is_edited_in_place_and_a_new_one_comes_at_most_each_minute(
        sqlite_database_url: str) -> None:
    clock = MovableClock()
    async with slack_world(sqlite_database_url, policy=POLICY, clock=clock) as world:
        app = world.app
        app.sandbox.set_restart_interval(1.0)
        _annotate(app, "deployment", "prod", "api", {FAIL: "CrashLoopBackOff"})
        assert await world.command(ALICE, 'request rollout restart deployment/api -n prod reason="api is slow"') == 200
        await world.settle()
        await world.click(BOB, "approve", "R-1")
        await world.settle()

        async def later(seconds: float, signoff_seconds: float | None = None) -> None:
            app.sandbox.advance(seconds)
            clock.advance(seconds=seconds if signoff_seconds is None else signoff_seconds)
            for _ in range(4):
                await asyncio.sleep(0.05)
                await app.verification.run_due()
            await world.settle()

        def notes() -> list[dict[str, Any]]:
            return [{**c.args, "ts": (c.response or {}).get("ts")} for c in world.fake.calls_to("chat.postMessage")
                    if not c.failed and "new pods:" in str(c.args.get("text"))]

        (first,) = notes()
        assert "CrashLoopBackOff (restarts 1)" in first["text"] and first.get("thread_ts"), first
        first_ts = first["ts"]
        assert first_ts
        await later(1.0)   # second restart
        await later(2.0)   # third restart
        assert len(notes()) == 1  # within the minute: edited, not posted again
        edits = [c.args for c in world.fake.calls_to("chat.update") if c.args.get("ts") == first_ts]
        assert edits and "(restarts 3)" in edits[-1]["text"], edits
        await later(4.0, signoff_seconds=61.0)  # fourth restart, a minute on: a new message
        assert len(notes()) == 2
        assert "(restarts 4)" in notes()[-1]["text"]
        request = await app.service.get("R-1")
        assert request.status is RequestStatus.verifying


async def test_on_discord_the_progress_message_is_edited_in_place(sqlite_database_url: str) -> None:
    clock = MovableClock()
    policy = team_policy(discord={"alice": D_ALICE, "bob": D_BOB}) + "\n[verify]\nmax_restarts = 6\n"
    async with FakeDiscord() as fake:
        settings = settings_for(fake, sqlite_database_url, SIGNOFF_SWEEP_INTERVAL="3600")
        async with running_app(settings, policy=policy, clock=clock) as app, \
                start_discord(app, settings, guild_ready_timeout=0.05), app.background():
            for user, name in ((D_ALICE, "alice"), (D_BOB, "bob")):
                fake.add_member(user, name)
            app.sandbox.set_restart_interval(1.0)
            _annotate(app, "deployment", "prod", "api", {FAIL: "CrashLoopBackOff"})
            await command(fake, D_ALICE, "request", action="rollout restart deployment/api -n prod",
                          reason="api is slow")
            card = await wait_card(fake, "R-1", lambda m: str(m["id"]) in fake.threads)
            thread = fake.threads[str(card["id"])]
            assert "You signed R-1" in await click(fake, D_BOB, card["id"], "signoff:approve:R-1")

            def progress() -> dict[str, Any] | None:
                return next((m for m in fake.thread_messages(thread)
                             if "is being verified" in str(m.get("embeds"))), None)

            note = await fake.wait_for(progress)
            assert "CrashLoopBackOff (restarts 1)" in str(note["embeds"]), note
            app.sandbox.advance(1.0)  # the second restart: the watch wakes verification, which edits the note
            edit = await fake.wait_for(lambda: next((c for c in fake.calls_to(
                "PATCH", rf"/channels/{thread}/messages/{note['id']}$") if "(restarts 2)" in str(c.json)), None))
            assert "is being verified" in str(edit.json)
            notes = [m for m in fake.thread_messages(thread) if "is being verified" in str(m.get("embeds"))]
            assert len(notes) == 1 and "(restarts 2)" in str(notes[0]["embeds"])
