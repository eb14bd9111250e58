"""`signoff run` as a real process: SIGHUP re-reads the policy file, an invalid one is refused with its file and
line in the log and in /metrics, and `POST /-/reload` does what SIGHUP does (issue 19, item 7)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.e2e.test_http_api import _service, call

POLICY = """\
[people.alice]
groups = ["sre"]

[risk.high]
quorum = 1
approvers = ["sre"]
"""
BAD_LINE = POLICY.count("\n") + 4


def _metric(base: str, name: str) -> float:
    _, text = call(base, "GET", "/metrics", token=None)
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


def _eventually(log: Path, event: str, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _events(log, event):
            return
        time.sleep(0.1)
    raise AssertionError(what)


def _events(log: Path, name: str) -> list[dict[str, object]]:
    found = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == name:
            found.append(entry)
    return found


def test_sighup_and_post_reload_the_policy(tmp_path: Path) -> None:
    policy = tmp_path / "signoff.toml"
    policy.write_text(POLICY)
    for base, process, log in _service(tmp_path, SIGNOFF_POLICY=str(policy)):
        # `carol` is not in the policy yet: her request is refused.
        asking = {"action": "cordon node-1", "requested_by": "carol"}
        assert call(base, "POST", "/api/v1/requests", asking)[0] == 403
        assert _metric(base, "signoff_policy_reload_success") == 1.0

        policy.write_text(POLICY + '\n[people.carol]\ngroups = ["bots"]\n')
        process.send_signal(signal.SIGHUP)
        _eventually(log, "policy.reloaded", "SIGHUP did not reload the policy")
        assert _events(log, "policy.reloaded")[0]["trigger"] == "signal"
        status, body = call(base, "POST", "/api/v1/requests", asking)
        assert status == 201, body

        policy.write_text(POLICY + '\n[people.dave]\ngroups = ["bots"]\npager = 1\n')
        process.send_signal(signal.SIGHUP)
        _eventually(log, "policy.reload_failed", "the invalid file was not reported")
        failed = _events(log, "policy.reload_failed")[0]
        assert failed["source"] == str(policy) and failed["line"] == BAD_LINE
        assert f"{policy}, line {BAD_LINE}" in str(failed["error"])
        assert _metric(base, "signoff_policy_reload_success") == 0.0
        assert process.poll() is None  # still serving, under the old policy
        assert call(base, "POST", "/api/v1/requests", {**asking, "action": "cordon node-2"})[0] == 201

        status, body = call(base, "POST", "/-/reload")
        assert status == 422 and f"{policy}, line {BAD_LINE}" in body["message"], body
        assert call(base, "POST", "/-/reload", token=None)[0] == 401
        policy.write_text(POLICY)
        status, body = call(base, "POST", "/-/reload")
        assert status == 200 and body["status"] == "reloaded", body
        assert _metric(base, "signoff_policy_reload_success") == 1.0
        assert call(base, "POST", "/api/v1/requests", {**asking, "action": "cordon node-3"})[0] == 403
