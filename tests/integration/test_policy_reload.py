"""Policy changes without a restart (issue 19, item 7), in process: `POST /-/reload` over real HTTP, the file
watch, an invalid file that leaves the old policy in force, a pending request that keeps its snapshot, and a
cluster the new policy adds getting its own executor (one more sandbox API server)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from bot.bootstrap import App, bootstrap
from bot.http import build_http_app
from core.app.clusters import registry_of
from core.domain.approvals import RequestStatus
from testkit.support import make_settings
from testkit.support.app import hooked_app

TOKEN = "reload-token-0123456789"
BEFORE = """\
[people.alice]
groups = ["sre"]

[people.bob]
groups = ["sre"]

[people.erin]
groups = ["sre"]

[risk.medium]
quorum = 2
approvers = ["sre"]
"""
AFTER = BEFORE.replace("quorum = 2", "quorum = 1") + """
[people.carol]
groups = ["sre"]
"""
INVALID = BEFORE + """
[people.dave]
groups = ["sre"]
pager = "yes"
"""


@pytest.fixture
async def served(tmp_path: Path, sqlite_database_url: str) -> AsyncIterator[tuple[App, str, Path]]:
    policy = tmp_path / "signoff.toml"
    policy.write_text(BEFORE)
    settings = make_settings(sqlite_database_url, SIGNOFF_API_TOKEN=TOKEN, SIGNOFF_POLICY=str(policy))
    async with hooked_app(settings, min_update_interval=0.0) as app:
        assert app.reloader is not None
        app.reloader.poll_s = 0.05
        server = TestServer(build_http_app(app))
        await server.start_server()
        try:
            async with app.background():
                yield app, str(server.make_url("")).rstrip("/"), policy
        finally:
            await server.close()


async def call(base: str, path: str, token: str | None = TOKEN, method: str = "POST") -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.request(method, base + path, headers=headers) as answer:
        text = await answer.text()
        return answer.status, (json.loads(text) if answer.content_type == "application/json" else text)


async def metric(base: str, name: str) -> float:
    _, text = await call(base, "/metrics", token=None, method="GET")
    values = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
    assert values, f"{name} missing from /metrics"
    return float(values[0])


async def test_post_reload_puts_the_new_policy_in_force(served: tuple[App, str, Path]) -> None:
    app, base, policy = served
    assert "carol" not in app.policy.people
    app.reloader.poll_s = 3600  # only the endpoint reloads here
    await asyncio.sleep(0.2)  # the watch is in its long wait now
    policy.write_text(AFTER)
    assert (await call(base, "/-/reload", token=None))[0] == 401
    assert (await call(base, "/-/reload", token="wrong"))[0] == 401
    assert "carol" not in app.service.policy.people
    status, body = await call(base, "/-/reload")
    assert status == 200, body
    assert body["status"] == "reloaded" and body["source"] == str(policy) and body["people"] == 4
    assert "carol" in app.service.policy.people and "carol" in app.policy.people
    # The next request reads the new quorum: one signature is enough now.
    request = await app.service.request("rollout restart deployment/api -n prod", by=app.policy.people["carol"],
                                        via="console")
    assert request.quorum == 1
    assert await metric(base, "signoff_policy_reload_success") == 1.0
    assert await metric(base, "signoff_policy_reload_last_success_timestamp_seconds") > 0


async def test_an_invalid_file_is_refused_and_the_old_policy_stays(served: tuple[App, str, Path]) -> None:
    app, base, policy = served
    old = app.service.policy
    policy.write_text(INVALID)
    with capture_logs() as logs:
        status, body = await call(base, "/-/reload")
    assert status == 422, body
    assert f"{policy}, line " in body["message"] and "pager" in body["message"]
    failed = [entry for entry in logs if entry["event"] == "policy.reload_failed"]
    assert failed and failed[0]["source"] == str(policy) and failed[0]["line"] == BEFORE.count("\n") + 4
    assert app.service.policy is old and app.policy is old
    assert await metric(base, "signoff_policy_reload_success") == 0.0
    request = await app.service.request("rollout restart deployment/api -n prod", by=old.people["alice"],
                                        via="console")
    assert request.quorum == 2  # the old policy answered
    policy.write_text(AFTER)  # fixed: the watch picks it up, and the gauge goes back to 1
    for _ in range(100):
        if "carol" in app.service.policy.people:
            break
        await asyncio.sleep(0.05)
    assert "carol" in app.service.policy.people
    assert await metric(base, "signoff_policy_reload_success") == 1.0


async def test_a_changed_file_is_noticed_and_a_pending_request_keeps_its_snapshot(
    served: tuple[App, str, Path],
) -> None:
    app, _, policy = served
    people = app.policy.people
    pending = await app.service.request("rollout restart deployment/api -n prod", by=people["alice"], via="console")
    assert pending.quorum == 2
    # A mounted ConfigMap: the new content arrives behind a swapped symlink; the mtime tells nothing.
    stat = policy.stat()
    staged = policy.with_name("..data_new")
    staged.write_text(AFTER)
    os.utime(staged, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(staged, policy)
    for _ in range(100):
        if "carol" in app.service.policy.people:
            break
        await asyncio.sleep(0.05)
    assert "carol" in app.service.policy.people
    # The request made under quorum 2 still needs two signatures.
    await app.service.sign(pending.id, by=people["bob"], via="console")
    assert (await app.service.get(pending.id)).status is RequestStatus.pending
    await app.service.sign(pending.id, by=app.service.policy.people["carol"], via="console")
    assert (await app.service.get(pending.id)).status is RequestStatus.approved


async def test_a_cluster_the_new_policy_adds_gets_its_executor(tmp_path: Path, sqlite_database_url: str) -> None:
    policy = tmp_path / "signoff.toml"
    fleet = BEFORE + "\n[clusters.eu-1]\ndefault = true\n"
    policy.write_text(fleet)
    settings = make_settings(sqlite_database_url, SIGNOFF_POLICY=str(policy))
    async with bootstrap(settings, min_update_interval=0.0) as app:
        assert app.reloader is not None
        people = app.policy.people
        with pytest.raises(Exception, match="us-1"):
            await app.service.request("rollout restart deployment/api -n prod on us-1", by=people["alice"],
                                      via="console")
        policy.write_text(fleet + "\n[clusters.us-1]\n")
        await app.reloader.reload("test")
        request = await app.service.request("rollout restart deployment/api -n prod on us-1", by=people["alice"],
                                            via="console")
        assert request.cluster == "us-1"
        assert request.blast is not None and request.blast.target_found and request.blast.pods == 3
        assert registry_of(app.cluster).names == ("eu-1", "us-1") and registry_of(app.cluster).default == "eu-1"
        for signer in ("bob", "erin"):
            await app.service.sign(request.id, by=people[signer], via="console")
        await app.settle()
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded
