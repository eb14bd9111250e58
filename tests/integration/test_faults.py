"""Fault injection: Slack's Web API failing 30% of calls (500, 429, timeouts) and the Kubernetes API
failing (500, 409, timeouts) at once. Every request still reaches a clear outcome, reported in its
thread; nothing is lost, executed twice or posted twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from testkit.crash import TERMINAL
from testkit.harness import SIGNERS, deployment
from testkit.support import sqlite_url

LIFECYCLES = 10


async def test_every_request_reaches_a_reported_outcome_under_faults(tmp_path: Path) -> None:
    env = {"SIGNOFF_CHAT_TIMEOUT": "1", "SIGNOFF_KUBE_TIMEOUT": "1"}
    with deployment(tmp_path, sqlite_url(tmp_path / "faults.db"), replicas=1, deployments=LIFECYCLES,
                    extra_env=env) as world:
        await world.start()
        process = world.replicas[0]
        world.slack.fail_randomly(0.3, seed=5, kinds=("500", "429", "timeout"), methods=["chat.postMessage",
                                  "chat.update", "chat.postEphemeral"], hang_seconds=2, retry_after=1)
        world.sandbox.inject_faults(0.3, seed=5, statuses="500,409", timeout_delay=2)
        request_ids = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            for index in range(LIFECYCLES):
                request_id = await world.create_request(session, process, f"app-{index:04d}")
                assert request_id is not None  # the API answers even when the cluster read fails
                request_ids.append(request_id)
                for user in SIGNERS:
                    assert await world.click(session, process, user, request_id)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            view = await world.database_view()
            if all(view["status"][r] in TERMINAL for r in request_ids) and view["backlog"] == 0:
                break
            await asyncio.sleep(0.5)
        view = await world.database_view()
        world.sandbox.inject_faults(0.0, seed=5)  # the checks below read the sandbox
        outcomes = {r: view["status"][r] for r in request_ids}
        print(outcomes, len([c for c in world.slack.calls if c.failed]), "failed Slack calls")
        assert all(status in TERMINAL for status in outcomes.values()), outcomes
        assert view["backlog"] == 0
        for index, request_id in enumerate(request_ids):
            assert view["claims"].get(request_id) == 1
            # A restart re-sent after a transient failure carries the same restartedAt: it rolls at most once.
            workload = world.sandbox.get(f"/apis/apps/v1/namespaces/crash/deployments/app-{index:04d}")
            assert workload["metadata"]["generation"] <= 2, request_id
            assert world.cards_posted(request_id) == 1, request_id
            results = world.outcome_messages(request_id)
            assert len(results) == 1, (request_id, results)
            assert outcomes[request_id] in results[0]
        failed_calls = [c for c in world.slack.calls if c.failed]
        assert failed_calls, "the fault injection did not fire"
        assert "Traceback" not in process.log_text()
