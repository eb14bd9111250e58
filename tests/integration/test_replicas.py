"""Two `signoff run` processes on one PostgreSQL, clicks spread across both: every request executes
exactly once and every chat message goes out once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from testkit.harness import CHANNEL, POLICY, SIGNERS, Deployment, deployment
from testkit.postgres import postgres_database

pytestmark = pytest.mark.postgres
LIFECYCLES = 12


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()


async def wait_until(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out waiting for the replicas to finish")


async def test_two_replicas_execute_once_and_deliver_once(tmp_path: Path, postgres_url: str) -> None:
    with deployment(tmp_path, postgres_url, replicas=2, deployments=LIFECYCLES) as world:
        await world.start()
        first, second = world.replicas
        async with aiohttp.ClientSession() as session:
            request_ids = []
            for index in range(LIFECYCLES):
                creator = world.replicas[index % 2]
                request_id = await world.create_request(session, creator, f"app-{index:04d}")
                assert request_id is not None
                request_ids.append(request_id)
            await wait_until(lambda: _all(world.card(r) is not None for r in request_ids))
            # Both signers click at the same moment, each on a different replica.
            clicks = await asyncio.gather(*(
                world.click(session, replica, user, request_id)
                for request_id in request_ids
                for replica, user in ((first, SIGNERS[0]), (second, SIGNERS[1]))
            ))
            assert all(clicks)

            async def finished() -> bool:
                view = await world.database_view()
                done = all(view["status"][r] == "succeeded" for r in request_ids)
                return done and view["backlog"] == 0 and all(world.outcome_messages(r) for r in request_ids)

            await wait_until(finished)
        view = await world.database_view()
        writes = world.sandbox.real_writes()
        for index, request_id in enumerate(request_ids):
            assert view["claims"][request_id] == 1
            assert writes[f"/apis/apps/v1/namespaces/crash/deployments/app-{index:04d}"] == 1
            assert {(request_id, "bob"), (request_id, "carol")} <= view["signatures"]
            assert world.cards_posted(request_id) == 1
            assert len(world.outcome_messages(request_id)) == 1
        # The clicks really were spread: each process stored signatures.
        logs = [replica.log_text() for replica in world.replicas]
        assert all('"event": "slack.click"' in log for log in logs)
        assert not any("Traceback" in log for log in logs)


async def _all(values: object) -> bool:
    return all(values)  # type: ignore[call-overload]


async def test_sweep_and_recovery_with_two_replicas(tmp_path: Path, postgres_url: str) -> None:
    """Both replicas sweep and recover at once: a request expires once and a restart interrupts nothing
    that the other replica is running."""
    with deployment(tmp_path, postgres_url, replicas=2, deployments=2,
                    extra_env={"SIGNOFF_SWEEP_INTERVAL": "0.2"}) as world:
        await world.start()
        async with aiohttp.ClientSession() as session:
            request_id = await world.create_request(session, world.replicas[0], "app-0000")
            assert request_id is not None
            await wait_until(lambda: _all([world.card(request_id) is not None]))
            # A restart of one replica while the other runs: recovery on PostgreSQL only takes lapsed leases.
            world.replicas[1].stop()
            world.replicas[1].start()
            await world.replicas[1].wait_healthy()
            assert await world.click(session, world.replicas[1], SIGNERS[0], request_id)
            assert await world.click(session, world.replicas[0], SIGNERS[1], request_id)

            async def done() -> bool:
                view = await world.database_view()
                return view["status"].get(request_id) == "succeeded" and bool(world.outcome_messages(request_id))

            await wait_until(done)
        view = await world.database_view()
        assert view["claims"][request_id] == 1
        assert len(world.outcome_messages(request_id)) == 1
        for replica in world.replicas:
            assert "Traceback" not in replica.log_text()


PAGING_POLICY = POLICY.replace(
    "[risk.high]\nquorum = 2\napprovers = [\"sre\"]\n",
    "[risk.high]\nquorum = 2\napprovers = [\"sre\"]\nescalate_after = \"2s\"\nescalate_to = [\"leads\"]\n"
    "remind_before_expiry = \"29m57s\"\n",
) + '\n[groups.leads]\nslack = "S0LEADS"\n'


async def test_two_replicas_escalate_and_remind_once(tmp_path: Path, postgres_url: str) -> None:
    """Both replicas sweep every 0.1 s: the escalation and the reminder are each posted once."""
    assert "escalate_after" in PAGING_POLICY
    with deployment(tmp_path, postgres_url, replicas=2, deployments=1, policy=PAGING_POLICY,
                    extra_env={"SIGNOFF_SWEEP_INTERVAL": "0.1"}) as world:
        await world.start()
        async with aiohttp.ClientSession() as session:
            request_id = await world.create_request(session, world.replicas[0], "app-0000")
            assert request_id is not None
            await wait_until(lambda: _all([world.card(request_id) is not None]))

            def paged() -> list[str]:
                card = world.card(request_id)
                assert card is not None
                return [m.get("text", "") for m in world.slack.thread(CHANNEL, card["ts"])
                        if "escalating to leads" in m.get("text", "") or "⏰" in m.get("text", "")]

            await wait_until(lambda: _all([len(paged()) >= 2]))
            # Only to give a second page its chance: about twenty more sweeps of each replica.
            await asyncio.sleep(2.0)
            view = await world.database_view()
            assert view["status"][request_id] == "pending"
        texts = paged()
        assert len([t for t in texts if "escalating to leads" in t]) == 1, texts
        assert len([t for t in texts if "⏰" in t]) == 1, texts
        assert next(t for t in texts if "escalating" in t).startswith("<!subteam^S0LEADS> ⏫")
        posts = [c for c in world.slack.calls_to("chat.postMessage")
                 if not c.failed and "escalating to leads" in str(c.args.get("text"))]
        assert len(posts) == 1
        # Each replica logged its sweeps; which one paged does not matter, only that one did.
        logs = "".join(replica.log_text() for replica in world.replicas)
        assert logs.count('"event": "request.paged"') == 2
        assert "Traceback" not in logs


__all__ = ["Deployment"]
