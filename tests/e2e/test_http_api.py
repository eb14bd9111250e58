"""`signoff run` with only the HTTP API: a real process, real HTTP, the sandbox cluster."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "api-token-for-tests-0123"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(base: str, method: str, path: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw = exc.read().decode()
        status = exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    yield from _service(tmp_path)


def _service(tmp_path: Path, **extra_env: str) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    port = _free_port()
    log = tmp_path / "signoff.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_", "DISCORD_"))}
    env.update({
        "PYTHONPATH": str(ROOT), "SIGNOFF_API_TOKEN": TOKEN, "SIGNOFF_CLUSTER": "sandbox",
        "SIGNOFF_HTTP_HOST": "127.0.0.1", "SIGNOFF_HTTP_PORT": str(port), "SIGNOFF_LOG_FORMAT": "json",
        "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/api.db", **extra_env,
    })
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, text=True)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if call(base, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                raise AssertionError(log.read_text())
            time.sleep(0.1)
        try:
            yield base, process, log
        finally:
            process.terminate()
            process.wait(timeout=20)


def test_api_creates_and_reads_requests(service: tuple[str, subprocess.Popen[str], Path]) -> None:
    base, process, log = service
    status, body = call(base, "POST", "/api/v1/requests",
                        {"action": "scale deployment/web --replicas=4 -n prod", "requested_by": "assistant",
                         "reason": "traffic spike", "risk": "low"})
    assert status == 201, body
    assert body["id"] == "R-1" and body["status"] == "pending" and body["risk"] == "low"
    assert body["command"] == "kubectl scale deployment/web --replicas=4 -n prod"
    status, body = call(base, "GET", "/api/v1/requests/R-1")
    assert status == 200 and body["timeline"][0]["type"] == "requested"

    status, body = call(base, "POST", "/api/v1/requests", {"action": "exec api -- sh", "requested_by": "x"})
    assert status == 422 and "Accepted forms" in body["message"]
    assert call(base, "GET", "/api/v1/requests/R-2")[0] == 404
    assert call(base, "GET", "/api/v1/requests/R-1", token="wrong")[0] == 401
    assert call(base, "GET", "/api/v1/requests/R-1", token=None)[0] == 401
    status, body = call(base, "POST", "/api/v1/requests", {"requested_by": "x"})
    assert status == 422 and "action" in body["message"]

    status, metrics = call(base, "GET", "/metrics", token=None)
    assert status == 200 and 'signoff_requests{state="pending"} 1' in metrics

    # The API and chat share one canonical id: `inc-db1` is INC-DB1 either way; `r-1` is R-1.
    status, body = call(base, "POST", "/api/v1/requests",
                        {"action": "cordon node-1", "requested_by": "assistant", "incident_id": "inc-db1"})
    assert status == 201 and body["incident_id"] == "INC-DB1", body
    assert call(base, "GET", "/api/v1/requests/r-1")[1]["id"] == "R-1"
    status, body = call(base, "POST", "/api/v1/requests",
                        {"action": "cordon node-1", "requested_by": "assistant", "incident_id": "INC 7"})
    assert status == 422 and "incident ids look like INC-7" in body["message"]
    process.terminate()
    process.wait(timeout=20)
    assert process.returncode == 0
    assert TOKEN not in log.read_text()


ROSTER = """
[people.assistant]
groups = ["bots"]

[people.alice]
slack = "U0ALICE"
groups = ["sre"]
"""


@pytest.fixture
def service_with_roster(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    policy = tmp_path / "signoff.toml"
    policy.write_text(ROSTER)
    yield from _service(tmp_path, SIGNOFF_POLICY=str(policy))


def test_api_refuses_a_person_the_roster_does_not_know(
    service_with_roster: tuple[str, subprocess.Popen[str], Path],
) -> None:
    """As in chat: with a roster of people, only people on it may ask; the sentence says how to be added."""
    base, _, _ = service_with_roster
    action = "rollout restart deployment/web -n prod"
    status, body = call(base, "POST", "/api/v1/requests", {"action": action, "requested_by": "mallory"})
    assert status == 403, body
    assert body["error"] == "unknown_person"
    assert "I don't know who you are" in body["message"] and "[people.mallory]" in body["message"]
    assert call(base, "GET", "/api/v1/requests/R-1")[0] == 404  # nothing was created

    status, body = call(base, "POST", "/api/v1/requests", {"action": action, "requested_by": "assistant"})
    assert status == 201 and body["requested_by"] == "assistant"


def test_the_api_answers_429_with_retry_after(tmp_path: Path) -> None:
    policy = tmp_path / "signoff.toml"
    policy.write_text("[requests]\nmax_per_person_per_minute = 2\n")
    for base, _process, _log in _service(tmp_path, SIGNOFF_POLICY=str(policy)):
        body = {"action": "cordon node-1", "requested_by": "assistant"}
        assert call(base, "POST", "/api/v1/requests", body)[0] == 201
        assert call(base, "POST", "/api/v1/requests", body)[0] == 201
        request = urllib.request.Request(base + "/api/v1/requests", data=json.dumps(body).encode(), method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {TOKEN}")
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as exc:
            assert exc.code == 429
            retry_after = exc.headers.get("Retry-After")
            assert retry_after is not None and 1 <= int(retry_after) <= 60
            assert json.loads(exc.read().decode())["error"] == "rate_limited"
        else:
            raise AssertionError("the third request was not refused")
