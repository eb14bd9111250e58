"""The real Alertmanager (Debian's `prometheus-alertmanager`) notifying a real `signoff run` through its webhook.

Alerts go in with `amtool`, as an operator (or Prometheus) would add them; Alertmanager groups them and
POSTs version-4 payloads to `/api/v1/alerts` with the bearer token from `http_config.authorization`.
Locally without the binary the test skips and says why; with SIGNOFF_REQUIRE_ALERTMANAGER=1 (CI) it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from adapters.db.database import Database
from testkit.harness import API_TOKEN, CHANNEL, Deployment, free_port

T = TypeVar("T")
NAMESPACE = "crash"  # the harness sandbox's namespace of one-replica deployments app-0000, app-0001, …


def _binaries() -> tuple[str, str]:
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    amtool = shutil.which("amtool")
    if alertmanager and amtool:
        return alertmanager, amtool
    message = ("the real Alertmanager is not installed (no `prometheus-alertmanager`/`amtool` on PATH; "
               "`apt-get install prometheus-alertmanager` provides both, .ci/run installs it)")
    if os.environ.get("SIGNOFF_REQUIRE_ALERTMANAGER") == "1":
        pytest.fail(message + "; SIGNOFF_REQUIRE_ALERTMANAGER=1 says this test must run here")
    pytest.skip(message)


class Alertmanager:
    def __init__(self, workdir: Path, binary: str, amtool: str, webhook: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._amtool = amtool
        (workdir / "alertmanager.yml").write_text(f"""
global:
  resolve_timeout: 5m
route:
  receiver: signoff
  group_by: [alertname, namespace]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: signoff
    webhook_configs:
      - url: {webhook}
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials: {API_TOKEN}
""")
        self._log = (workdir / "alertmanager.log").open("w")
        self.process = subprocess.Popen(
            [binary, f"--config.file={workdir / 'alertmanager.yml'}", f"--storage.path={workdir / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=debug"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.amtool("config", "show", check=False).returncode == 0:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"alertmanager did not start: {(workdir / 'alertmanager.log').read_text()[-2000:]}")

    def amtool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self._amtool, f"--alertmanager.url={self.url}", *args], capture_output=True,
                              text=True, check=check, timeout=60)

    def add(self, labels: dict[str, str], *, end: str | None = None) -> None:
        extra = [f"--end={end}"] if end else []
        self.amtool("alert", "add", *(f"{k}={v}" for k, v in labels.items()),
                    "--annotation=summary=crash looping", *extra)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


def crash_labels(deployment: str, pod: int) -> dict[str, str]:
    return {"alertname": "KubePodCrashLooping", "namespace": NAMESPACE, "pod": f"{deployment}-7c9f8d-p{pod}",
            "severity": "warning"}


async def eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], what: str,
                     timeout: float = 60.0) -> T:
    """Alertmanager notifies on its own schedule: wait (generously) until the database shows the outcome."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r}")
        await asyncio.sleep(0.2)


@contextlib.contextmanager
def world(tmp_path: Path) -> Iterator[tuple[Deployment, Alertmanager]]:
    binary, amtool = _binaries()
    database_url = f"sqlite+aiosqlite:///{tmp_path}/signoff.db"
    deployment = Deployment(tmp_path, database_url, replicas=1, deployments=4)
    try:
        replica = deployment.replicas[0]
        manager = Alertmanager(tmp_path, binary, amtool, replica.base + "/api/v1/alerts")
        try:
            yield deployment, manager
        finally:
            manager.stop()
    finally:
        deployment.close()


async def snapshot(database_url: str) -> dict[str, Any]:
    db = Database(database_url)
    try:
        def read(uow: Any) -> dict[str, Any]:
            incidents = uow.connection.exec_driver_sql("SELECT id, status, data FROM incidents ORDER BY id").all()
            requests = uow.connection.exec_driver_sql("SELECT id, incident_id FROM requests").all()
            alerts = uow.connection.exec_driver_sql("SELECT count(*) FROM incident_alerts").scalar_one()
            return {"incidents": {row[0]: row[1] for row in incidents}, "alerts": int(alerts),
                    "requests": {row[0]: row[1] for row in requests}}

        return await db.read(read)
    finally:
        await db.dispose()


async def test_real_alertmanager_into_signoff(tmp_path: Path) -> None:
    with world(tmp_path) as (deployment, manager):
        await deployment.start()
        url = deployment.database_url

        async def view() -> dict[str, Any]:
            return await snapshot(url)

        # Firing: an incident and its proposal.
        manager.add(crash_labels("app-0000", 1))
        first = await eventually(view, lambda v: len(v["incidents"]) == 1 and len(v["requests"]) == 1,
                                 "one incident with one proposal")
        [incident_id] = first["incidents"]
        [request_id] = first["requests"]
        assert first["requests"][request_id] == incident_id
        # Alertmanager repeats the group (repeat_interval 2s): nothing new.
        await eventually(lambda: asyncio.sleep(0.5, result=manager.process.poll()), lambda r: r is None,
                         "alertmanager running")
        log = tmp_path / "alertmanager.log"
        sent_before = log.read_text().count("Notify success")
        await eventually(lambda: asyncio.sleep(0.2, result=log.read_text().count("Notify success")),
                         lambda n: n >= sent_before + 1, "a repeated notification")
        assert await view() == first
        # Resolved: the incident resolves.
        manager.add(crash_labels("app-0000", 1), end=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1)))
        await eventually(view, lambda v: v["incidents"][incident_id] == "resolved", "the incident resolved")

        # A storm: 200 alerts over 3 deployments, 3 incidents and at most 3 cards.
        posts_before = sum(1 for call in deployment.slack.calls_to("chat.postMessage")
                           if not call.args.get("thread_ts"))
        targets = ("app-0001", "app-0002", "app-0003")
        jobs = [crash_labels(targets[i % 3], i) for i in range(200)]
        await asyncio.gather(*(asyncio.to_thread(manager.add, labels) for labels in jobs))
        storm = await eventually(view, lambda v: v["alerts"] == 201, "all 200 alerts filed", timeout=120)
        opened = [i for i, status in storm["incidents"].items() if i != incident_id]
        assert len(opened) == 3 and all(status != "resolved" for i, status in storm["incidents"].items()
                                        if i != incident_id)
        assert len(storm["requests"]) == 1 + 3
        await eventually(lambda: asyncio.sleep(0.2, result=deployment.slack.messages(CHANNEL)),
                         lambda m: sum(1 for x in m if x.get("thread_ts") in (None, x["ts"])) >= posts_before + 3,
                         "the storm's cards posted")
        await asyncio.sleep(1.0)  # let any extra card (there must be none) reach the fake Slack
        posts_after = sum(1 for call in deployment.slack.calls_to("chat.postMessage")
                          if not call.args.get("thread_ts"))
        assert posts_after - posts_before <= 3


def post_to_alertmanager(manager: Alertmanager, alerts: list[dict[str, Any]]) -> None:
    """As Prometheus does: one POST of many alerts to Alertmanager's API (amtool adds one per process)."""
    request = urllib.request.Request(manager.url + "/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


async def test_a_storm_of_3000_alerts_in_one_notification_is_recorded_whole(tmp_path: Path) -> None:
    """Issue 18, item 1: `max_alerts: 0` sends the whole group, 3,000 crash-looping pods over 3 deployments,
    about 1.4 MB in one body. Every alert is recorded and the 3 deployments are 3 incidents (before the fix
    the body was read cut short and refused 422: 436 alerts recorded, 1 incident, no error line)."""
    with world(tmp_path) as (deployment, manager):
        await deployment.start()
        url = deployment.database_url
        targets = ("app-0001", "app-0002", "app-0003")
        alerts = [{"labels": crash_labels(targets[i % 3], i), "annotations": {"summary": "crash looping"}}
                  for i in range(3000)]
        await asyncio.to_thread(post_to_alertmanager, manager, alerts)
        storm = await eventually(lambda: snapshot(url), lambda v: v["alerts"] == 3000, "all 3,000 alerts recorded",
                                 timeout=40)
        assert len(storm["incidents"]) == 3 and len(storm["requests"]) == 3, storm
        am_log = tmp_path / "alertmanager.log"
        await eventually(lambda: asyncio.sleep(0.2, result=am_log.read_text()), lambda text: "Notify success" in text,
                         "Alertmanager's notification answered 2xx")
        assert "Notify for alerts failed" not in am_log.read_text(), am_log.read_text()[-3000:]
