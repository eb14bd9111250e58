"""Alert digestion benchmark (not a test): Alertmanager notifications through POST /api/v1/alerts into
incidents and proposals, against a real `signoff run` process (sandbox cluster, SQLite file).

    python bench/alerts.py [--alerts 1000] [--per-notification 10] [--concurrency 4]

Goal (issue 5): >= 200 alerts/s here. Each new alert opens an incident, runs the decision manager
(rules track: the pod's owner and replicas are read from the cluster) and creates an approval request
with its blast radius (more cluster reads). Repeated notifications (Alertmanager's repeat_interval)
are measured separately: they only look up the incident.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOKEN = "bench-alerts-token-0123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def notification(batch: int, size: int, pods: list[str]) -> dict[str, Any]:
    alerts = []
    for i in range(size):
        n = batch * size + i
        kind = n % 4
        if kind == 0:
            labels = {"alertname": "KubePodCrashLooping", "namespace": "prod", "pod": pods[n % len(pods)],
                      "container": "api"}
        elif kind == 1:
            labels = {"alertname": "KubeDeploymentReplicasMismatch", "namespace": "prod", "deployment": "web"}
        elif kind == 2:
            labels = {"alertname": "KubeNodeNotReady", "node": f"node-{n % 3 + 1}"}
        else:
            labels = {"alertname": "KubeJobFailed", "namespace": "prod", "job_name": f"backup-{n}"}
        labels.update({"severity": "warning", "job": "kube-state-metrics", "bench": str(n)})
        alerts.append({
            "status": "firing", "labels": labels, "annotations": {"summary": "bench", "description": f"alert {n}"},
            "startsAt": "2026-11-27T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
            "fingerprint": f"bench{n:08d}",
        })
    return {"version": "4", "status": "firing", "receiver": "signoff", "groupKey": f"bench-{batch}",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "truncatedAlerts": 0,
            "alerts": alerts}


async def post_all(url: str, payloads: list[dict[str, Any]], concurrency: int) -> float:
    queue = list(reversed(payloads))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async def worker() -> None:
            while queue:
                body = json.dumps(queue.pop())
                async with session.post(url, data=body, headers=headers) as response:
                    assert response.status == 200, await response.text()
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--per-notification", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--in-process-sandbox", action="store_true",
                        help="SIGNOFF_CLUSTER=sandbox inside signoff's process instead of its own process")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_", "DISCORD_"))}
        env.update({"PYTHONPATH": str(ROOT), "SIGNOFF_API_TOKEN": TOKEN, "SIGNOFF_CLUSTER": "sandbox",
                    "SIGNOFF_HTTP_HOST": "127.0.0.1", "SIGNOFF_HTTP_PORT": str(port),
                    "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db", "SIGNOFF_LOG_LEVEL": "error"})
        sandbox = None
        if not args.in_process_sandbox:
            # As in production the API server is another process (here: the sandbox on loopback).
            from testkit.harness import SandboxProcess

            sandbox = SandboxProcess(Path(tmp), deployments=0)
            env.update({"SIGNOFF_CLUSTER": "kubeconfig", "KUBECONFIG": str(sandbox.kubeconfig)})
        where = "in signoff's process" if sandbox is None else "in its own process"
        print(f"sandbox API server {where}")
        process = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp, env=env)  # noqa: ASYNC220
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(300):
                    try:
                        async with session.get(base + "/healthz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            # The sandbox's prod api pods, as the bench names them in crash-loop alerts.
            pods = [f"api-pod-{i}" for i in range(3)]
            batches = args.alerts // args.per_notification
            payloads = [notification(b, args.per_notification, pods) for b in range(batches)]
            total = batches * args.per_notification
            elapsed = await post_all(base + "/api/v1/alerts", payloads, args.concurrency)
            print(f"new alerts      : {total} in {elapsed:.2f} s = {total / elapsed:7.1f} alerts/s "
                  f"(incident + decision + approval request each; goal >= 200/s)")
            repeat = await post_all(base + "/api/v1/alerts", payloads, args.concurrency)
            print(f"repeated alerts : {total} in {repeat:.2f} s = {total / repeat:7.1f} alerts/s "
                  "(Alertmanager repeat_interval: idempotent lookups)")
        finally:
            process.terminate()
            process.wait(timeout=30)
            if sandbox is not None:
                sandbox.stop()


if __name__ == "__main__":
    asyncio.run(main())
