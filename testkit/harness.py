"""Real `signoff run` processes around shared outside parts, for the replica, crash and fault tests.

The sandbox API server runs in its own process (its state survives a killed signoff), a fake
Slack runs in a thread of the harness, and each signoff is `python -m bot run` in Slack HTTP mode
with the HTTP API on: exactly what a deployment runs, started and killed like one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from adapters.db.database import Database
from testkit.fakes.slack import FakeSlack, block_actions_body, post_signed

ROOT = Path(__file__).resolve().parents[1]
SECRET = "harness-signing-secret"
API_TOKEN = "harness-api-token-0123456789"
SANDBOX_TOKEN = "harness-sandbox-token"
CHANNEL = "C0APPROVALS"
SIGNERS = ("U0BOB", "U0CAROL")
POLICY = """
[people.assistant]
groups = ["bots"]
[people.bob]
slack = "U0BOB"
groups = ["sre"]
[people.carol]
slack = "U0CAROL"
groups = ["sre"]

[risk.medium]
quorum = 2
approvers = ["sre"]
[risk.high]
quorum = 2
approvers = ["sre"]

# The harnesses post hundreds of requests a minute into one channel and follow each card's thread;
# flood control (tests/integration/test_flood_control.py) is not what they test.
[chat]
max_new_cards_per_minute = 1000
"""
TERMINAL_WORDS = ("succeeded", "failed", "blocked", "interrupted", "expired")


def requester(target: str) -> str:
    """One requester per target: the per-person rate limit (20 a minute) is not what these harnesses test."""
    return f"assistant-{target}"


def requesters(deployments: int) -> str:
    """The requesters on the roster: with a roster, the API refuses a person it does not list (as chat does)."""
    return "".join(f'\n[people.{requester(f"app-{i:04d}")}]\ngroups = ["bots"]\n' for i in range(deployments))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SandboxProcess:
    """`python -m testkit.fakes.sandbox` (the sandbox with its test hooks) with one deployment per lifecycle in
    namespace `crash`."""

    def __init__(self, workdir: Path, deployments: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.kubeconfig = workdir / "kubeconfig"
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: sandbox, cluster: {{server: \"{self.url}\"}}}}]\n"
            f"users: [{{name: harness, user: {{token: {SANDBOX_TOKEN}}}}}]\n"
            "contexts: [{name: sandbox, context: {cluster: sandbox, user: harness}}]\n"
            "current-context: sandbox\n"
        )
        self._log = (workdir / "sandbox.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "testkit.fakes.sandbox", "--port", str(self.port), "--token", SANDBOX_TOKEN,
             "--deployments", str(deployments)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                self.requests()
                return
            time.sleep(0.05)
        raise RuntimeError("the sandbox process did not start")

    def requests(self) -> list[dict[str, Any]]:
        request = urllib.request.Request(self.url + "/_sandbox/requests",
                                         headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            rows: list[dict[str, Any]] = json.load(response)["requests"]
        return rows

    def clear_requests(self) -> None:
        """Forget the recorded calls (a bench counting a window's calls starts from none)."""
        request = urllib.request.Request(self.url + "/_sandbox/requests", method="DELETE",
                                         headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"})
        urllib.request.urlopen(request, timeout=5).close()

    def get(self, path: str) -> dict[str, Any]:
        """An object as the API serves it (faults off while the harness reads)."""
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            body: dict[str, Any] = json.load(response)
        return body

    def inject_faults(self, fraction: float, seed: int, statuses: str = "500,409",
                      timeout_delay: float | None = None) -> None:
        query = f"fraction={fraction}&seed={seed}&statuses={statuses}"
        if timeout_delay is not None:
            query += f"&timeout_delay={timeout_delay}"
        request = urllib.request.Request(self.url + "/_sandbox/faults?" + query, method="POST",
                                         headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"})
        urllib.request.urlopen(request, timeout=5).close()

    def real_writes(self) -> Counter[str]:
        """Writes that were not dry runs, by path: what really changed the cluster."""
        return Counter(r["path"] for r in self.requests()
                       if r["method"] in ("PATCH", "PUT", "DELETE") and r["query"].get("dryRun") != "All")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._log.close()


@dataclass
class SignoffProcess:
    """One `signoff run`: Slack HTTP mode against the fake, HTTP API, the outside sandbox."""

    workdir: Path
    env: dict[str, str]
    name: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = (self.workdir / f"{self.name}.log").open("ab")
        env = {**self.env, "SIGNOFF_HTTP_PORT": str(self.port)}
        self.process = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=self.workdir, env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(self.base + "/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become healthy: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, like an OOM kill or a lost node."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / f"{self.name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def log_text(self) -> str:
        path = self.workdir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Deployment:
    """The outside world of a harness run: database, sandbox process, fake Slack, N signoff processes."""

    def __init__(self, workdir: Path, database_url: str, *, replicas: int, deployments: int,
                 extra_env: dict[str, str] | None = None, policy: str = POLICY) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self._stack = contextlib.ExitStack()
        self.sandbox = SandboxProcess(workdir, deployments)
        self._stack.callback(self.sandbox.stop)
        self.slack: FakeSlack = self._stack.enter_context(FakeSlack.running_in_thread())
        (workdir / "signoff.toml").write_text(policy + requesters(deployments))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_", "DISCORD_"))}
        env.update({
            "PYTHONPATH": str(ROOT), "KUBECONFIG": str(self.sandbox.kubeconfig), "SIGNOFF_CLUSTER": "kubeconfig",
            "SIGNOFF_DATABASE_URL": database_url, "SIGNOFF_POLICY": str(workdir / "signoff.toml"),
            "SIGNOFF_API_TOKEN": API_TOKEN, "SIGNOFF_HTTP_HOST": "127.0.0.1", "SIGNOFF_LOG_FORMAT": "json",
            "SLACK_BOT_TOKEN": self.slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.slack.api_url, "SLACK_CHANNEL": CHANNEL,
            "SIGNOFF_SWEEP_INTERVAL": "0.5", "SIGNOFF_EXECUTION_LEASE": "20", "SIGNOFF_KUBE_TIMEOUT": "5",
            **(extra_env or {}),
        })
        self.env = env
        self.replicas = [SignoffProcess(workdir, env, f"signoff-{i}") for i in range(replicas)]

    async def start(self) -> None:
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            await replica.wait_healthy()

    def close(self) -> None:
        for replica in self.replicas:
            replica.stop()
        self._stack.close()

    # ---- acting as people and as an assistant

    async def create_request(self, session: aiohttp.ClientSession, replica: SignoffProcess, target: str,
                             ) -> str | None:
        """POST /api/v1/requests; None when the process did not answer (it may or may not have stored it)."""
        body = {"action": f"rollout restart deployment/{target} -n crash", "requested_by": requester(target),
                "risk": "high", "reason": "harness"}
        try:
            async with session.post(replica.base + "/api/v1/requests", json=body,
                                    headers={"Authorization": f"Bearer {API_TOKEN}"}) as response:
                if response.status != 201:
                    return None
                return str((await response.json())["id"])
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None

    async def click(self, session: aiohttp.ClientSession, replica: SignoffProcess, user: str, request_id: str,
                    ) -> bool:
        """A signed Approve click on the request's card; True when Slack would have shown it acknowledged."""
        card = self.card(request_id)
        body = block_actions_body(user, CHANNEL, card["ts"] if card else "1.0", "signoff_approve", request_id,
                                  self.slack.new_response_url(CHANNEL))
        try:
            status, _ = await post_signed(replica.base + "/slack/events", body, SECRET, session=session)
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False
        return status == 200

    # ---- what people see in Slack

    def cards(self, request_id: str) -> list[dict[str, Any]]:
        """Every card of the request (more than one only if a post was repeated after a crash)."""
        pattern = re.compile(rf"\b{re.escape(request_id)}\b")
        found = []
        for message in self.slack.messages(CHANNEL):
            # A thread's parent carries thread_ts == ts once it has replies, as in Slack.
            parent = message.get("thread_ts") in (None, message["ts"])
            if parent and pattern.search(message.get("text", "")):
                found.append(message)
        return found

    def card(self, request_id: str) -> dict[str, Any] | None:
        cards = self.cards(request_id)
        return cards[0] if cards else None

    def cards_posted(self, request_id: str) -> int:
        pattern = re.compile(rf"\b{re.escape(request_id)}\b")
        return sum(1 for call in self.slack.calls_to("chat.postMessage")
                   if not call.failed and not call.args.get("thread_ts")
                   and pattern.search(str(call.args.get("text", ""))))

    def outcome_messages(self, request_id: str) -> list[str]:
        """Result messages in the request's thread ("✅ R-3 succeeded: …", "⚠️ R-3 was interrupted …")."""
        prefix = re.compile(rf"{re.escape(request_id)} (?:{'|'.join(TERMINAL_WORDS)}|was interrupted|expired)")
        return [m["text"] for card in self.cards(request_id) for m in self.slack.thread(CHANNEL, card["ts"])
                if prefix.search(m.get("text", ""))]

    # ---- what the database and the cluster say

    async def database_view(self) -> dict[str, Any]:
        db = Database(self.database_url)
        try:
            def read(uow: Any) -> dict[str, Any]:
                rows = uow.connection.exec_driver_sql(
                    "SELECT id, status FROM requests ORDER BY number").all()
                signatures = uow.connection.exec_driver_sql("SELECT request_id, person FROM signatures").all()
                claims = uow.connection.exec_driver_sql(
                    "SELECT request_id, count(*) FROM timeline WHERE type = 'claimed' GROUP BY request_id").all()
                backlog = uow.outbox.backlog()
                return {"status": {r[0]: r[1] for r in rows}, "signatures": {(s[0], s[1]) for s in signatures},
                        "claims": {c[0]: int(c[1]) for c in claims}, "backlog": backlog}

            return await db.read(read)
        finally:
            await db.dispose()


def people_for(user: str) -> str:
    return {"U0BOB": "bob", "U0CAROL": "carol"}[user]


@contextlib.contextmanager
def deployment(workdir: Path, database_url: str, *, replicas: int, deployments: int,
               extra_env: dict[str, str] | None = None, policy: str = POLICY) -> Iterator[Deployment]:
    world = Deployment(workdir, database_url, replicas=replicas, deployments=deployments, extra_env=extra_env,
                       policy=policy)
    try:
        yield world
    finally:
        world.close()
