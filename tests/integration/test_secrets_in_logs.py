"""Secrets never reach a log line: a full run at debug level, every log line searched for every token."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from testkit.harness import API_TOKEN, SECRET, SIGNERS, deployment
from testkit.support import sqlite_url


async def test_a_full_run_logs_no_secret(tmp_path: Path) -> None:
    password = "pg-password-never-logged"
    with deployment(tmp_path, sqlite_url(tmp_path / "secrets.db"), replicas=1, deployments=2,
                    extra_env={"SIGNOFF_LOG_LEVEL": "debug", "SIGNOFF_LLM_API_KEY": "sk-llm-key-never-logged",
                               "SIGNOFF_LLM_URL": "http://127.0.0.1:9/v1"}) as world:
        await world.start()
        process = world.replicas[0]
        async with aiohttp.ClientSession() as session:
            request_id = await world.create_request(session, process, "app-0000")
            assert request_id is not None
            for user in SIGNERS:
                assert await world.click(session, process, user, request_id)
            # A wrong token and a forged click are logged as refusals; the real values still never appear.
            async with session.get(process.base + "/api/v1/requests/R-1",
                                   headers={"Authorization": f"Bearer {API_TOKEN}x"}) as response:
                assert response.status == 401
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not world.outcome_messages(request_id):
            await asyncio.sleep(0.2)
        assert world.outcome_messages(request_id)
        process.stop()
        log = process.log_text()
    assert "DEBUG slack_sdk" in log  # the SDKs really logged at debug level, requests and all
    for secret in (API_TOKEN, SECRET, world.slack.bot_token, "sk-llm-key-never-logged", password):
        assert secret not in log, f"a secret reached the log: {secret[:4]}…"
