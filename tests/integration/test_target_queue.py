"""One operation per target at a time, in the order approved (issue 21, item 3), across two `signoff run`
processes on one PostgreSQL: five scales of one deployment (to 4, 5, 6, 7, 8), approved one after another with
the clicks spread across both replicas, all end `succeeded` (none left `verifying`, no false failure), run in the
order approved, and the deployment ends at 8 replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.db.database import Database
from testkit.harness import API_TOKEN, SANDBOX_TOKEN, SIGNERS, deployment, requester
from testkit.postgres import postgres_database

pytestmark = pytest.mark.postgres
TARGET = "app-0000"
COUNTS = (4, 5, 6, 7, 8)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()


async def claims_in_order(database_url: str) -> list[tuple[str, str]]:
    db = Database(database_url)
    try:
        def read(uow: Any) -> list[tuple[str, str]]:
            rows = uow.connection.exec_driver_sql(
                "SELECT request_id, type FROM timeline WHERE type IN ('claimed', 'approved') ORDER BY seq").all()
            return [(str(r[0]), str(r[1])) for r in rows]

        return await db.read(read)
    finally:
        await db.dispose()


async def test_a_burst_of_scales_on_one_deployment_runs_in_order_across_two_replicas(
        tmp_path: Path, postgres_url: str) -> None:
    with deployment(tmp_path, postgres_url, replicas=2, deployments=1) as world:
        await world.start()
        first, second = world.replicas
        async with aiohttp.ClientSession() as session:
            # New pods take a while to turn Ready, so a scale is still verifying when the next one is approved.
            async with session.post(world.sandbox.url + "/_sandbox/ready_delay?seconds=1.5",
                                    headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}) as response:
                assert response.status == 200
            ids: list[str] = []
            for index, count in enumerate(COUNTS):
                body = {"action": f"scale deployment/{TARGET} -n crash --replicas={count}",
                        "requested_by": requester(TARGET), "reason": "burst"}
                async with session.post(world.replicas[index % 2].base + "/api/v1/requests", json=body,
                                        headers={"Authorization": f"Bearer {API_TOKEN}"}) as response:
                    assert response.status == 201, await response.text()
                    ids.append(str((await response.json())["id"]))
            deadline = time.monotonic() + 30
            while not all(world.card(r) for r in ids) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            # Approved one after another; each request's two signatures land on different replicas.
            for index, request_id in enumerate(ids):
                signers = ((first, SIGNERS[0]), (second, SIGNERS[1])) if index % 2 else (
                    (second, SIGNERS[0]), (first, SIGNERS[1]))
                for replica, user in signers:
                    assert await world.click(session, replica, user, request_id)

            deadline = time.monotonic() + 90
            view = await world.database_view()
            while time.monotonic() < deadline:
                view = await world.database_view()
                if all(view["status"][r] in ("succeeded", "failed", "blocked", "stale", "interrupted")
                       for r in ids):
                    break
                await asyncio.sleep(0.2)
        assert [view["status"][r] for r in ids] == ["succeeded"] * len(ids), view["status"]
        events = await claims_in_order(postgres_url)
        approved = [r for r, kind in events if kind == "approved" and r in ids]
        claimed = [r for r, kind in events if kind == "claimed" and r in ids]
        assert claimed == approved == ids
        assert world.sandbox.get(f"/apis/apps/v1/namespaces/crash/deployments/{TARGET}")["spec"]["replicas"] == 8
        logs = [replica.log_text() for replica in world.replicas]
        assert not any("Traceback" in log for log in logs)
        # Someone waited its turn, and its card said for whom.
        assert any('"event": "execution.waiting"' in log for log in logs)
