"""The real `kubectl` binary against `signoff sandbox` in a subprocess, over HTTPS with the
kubeconfig it writes: get, describe, rollout status and history, scale, cordon, drain; and
`signoff console` on the same kubeconfig, side by side with kubectl.

Without kubectl these tests skip, saying why; with SIGNOFF_REQUIRE_KUBECTL=1 (CI) they fail instead.
kubectl caches discovery under $HOME/.kube/cache, so every run gets a fresh HOME.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")


def _require_kubectl() -> str:
    if KUBECTL is None:
        if os.environ.get("SIGNOFF_REQUIRE_KUBECTL") == "1":
            pytest.fail("SIGNOFF_REQUIRE_KUBECTL=1 but kubectl is not on PATH (.ci/run installs Debian's kubectl)")
        pytest.skip("kubectl is not installed: these tests need the real binary (CI installs it)")
    return KUBECTL


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_", "DISCORD_", "KUBE"))}
    env.update({"HOME": str(home), "PYTHONPATH": str(ROOT), "SIGNOFF_LOG_FORMAT": "json"})
    return env


@dataclass
class Served:
    kubeconfig: Path
    url: str
    home: Path
    process: subprocess.Popen[str]

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = _base_env(self.home) | {"KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run([_require_kubectl(), *args], capture_output=True, text=True, env=env,
                                timeout=timeout, check=False)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's stdout lines, read by a thread so a silent process cannot hang the test."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")  # EOF

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next(lines: queue.Queue[str], process: subprocess.Popen[str]) -> str:
    try:
        return lines.get(timeout=60)
    except queue.Empty:
        raise AssertionError(f"signoff sandbox printed nothing in time (exit {process.poll()})") from None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    _require_kubectl()
    home = tmp_path / "home"
    home.mkdir()
    kubeconfig = tmp_path / "sandbox.kubeconfig"
    errors = (tmp_path / "sandbox.stderr").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox", "--port", "0", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE, stderr=errors, text=True, env=_base_env(home),
    )
    try:
        lines = _lines(process)
        first = _next(lines, process)
        assert first.startswith("sandbox cluster serving at https://127.0.0.1:"), first
        url = first.split(" at ")[1].split(" ")[0]
        assert _next(lines, process).strip() == f"kubeconfig: {kubeconfig}"
        yield Served(kubeconfig, url, home, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        finally:
            errors.close()
    assert process.returncode == 0, (tmp_path / "sandbox.stderr").read_text()[-3000:]
    rest = []
    while (line := lines.get(timeout=10)) != "":
        rest.append(line)
    assert "sandbox stopped\n" in rest


def test_the_kubeconfig_is_private_and_uses_tls_and_a_token(served: Served) -> None:
    assert served.kubeconfig.stat().st_mode & 0o077 == 0
    config = json.loads(served.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == served.url and cluster["certificate-authority-data"]
    assert "insecure-skip-tls-verify" not in cluster
    assert config["users"][0]["user"]["token"]


def test_kubectl_get_and_describe(served: Served) -> None:
    pods = served.json("get", "pods", "-n", "prod")["items"]
    assert {p["metadata"]["name"].split("-")[0] for p in pods} == {"api", "postgres", "web", "worker"}
    table = served.kubectl("get", "pods", "-n", "prod").stdout  # the server's Table, as kubectl prints it
    assert table.split("\n")[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "postgres-0" in table and "Running" in table
    wide = served.kubectl("get", "pods", "-A", "-o", "wide").stdout
    assert wide.split("\n")[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert "node-1" in served.kubectl("get", "nodes").stdout
    described = served.kubectl("describe", "deployment", "api", "-n", "prod").stdout
    assert "Replicas:               3 desired | 3 updated | 3 total | 3 available" in described
    pod = served.kubectl("describe", "pod", "postgres-0", "-n", "prod").stdout
    assert "Controlled By:  StatefulSet/postgres" in pod and "Node:             node-1" in pod


def test_kubectl_rollout_status_and_history(served: Served) -> None:
    status = served.kubectl("rollout", "status", "deployment/api", "-n", "prod", "--timeout=30s")
    assert 'deployment "api" successfully rolled out' in status.stdout
    assert "Failed to watch" not in status.stderr  # the sandbox serves ?watch=true
    history = served.kubectl("rollout", "history", "deployment/api", "-n", "prod").stdout
    assert "REVISION" in history and "deploy 1.4.2" in history
    served.kubectl("rollout", "restart", "deployment/api", "-n", "prod")
    status = served.kubectl("rollout", "status", "deployment/api", "-n", "prod", "--timeout=60s")
    assert 'deployment "api" successfully rolled out' in status.stdout


def test_kubectl_scale_and_cordon(served: Served) -> None:
    scaled = served.kubectl("scale", "deployment/web", "--replicas=3", "-n", "prod")
    assert "deployment.apps/web scaled" in scaled.stdout
    assert served.json("get", "deployment", "web", "-n", "prod")["spec"]["replicas"] == 3
    assert "node/node-2 cordoned" in served.kubectl("cordon", "node-2").stdout
    assert served.json("get", "node", "node-2")["spec"]["unschedulable"] is True


def test_kubectl_drain_evicts_through_the_eviction_api(served: Served) -> None:
    result = served.kubectl("drain", "node-1", "--ignore-daemonsets", "--timeout=60s")
    assert "evicting pod prod/postgres-0" in result.stdout + result.stderr
    assert "node/node-1 drained" in result.stdout
    left = [p for p in served.json("get", "pods", "-A")["items"] if p["spec"].get("nodeName") == "node-1"]
    assert {p["metadata"]["ownerReferences"][0]["kind"] for p in left} == {"DaemonSet"}


def test_signoff_console_and_kubectl_side_by_side(served: Served, tmp_path: Path) -> None:
    script = "request drain node-3\nas bob\napprove R-1\nas carol\napprove 1\nstatus R-1\nquit\n"
    env = _base_env(served.home) | {
        "SIGNOFF_CLUSTER": "kubeconfig",
        "KUBECONFIG": str(served.kubeconfig),
        "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db",
    }
    console = subprocess.run([sys.executable, "-m", "bot", "console"], input=script, capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert console.returncode == 0, console.stderr[-3000:]
    assert "R-1 is succeeded" in console.stdout, console.stdout[-3000:]
    assert "evicts: " in console.stdout  # the card's blast radius names the pods and their owners
    assert served.json("get", "node", "node-3")["spec"]["unschedulable"] is True
    left = [p for p in served.json("get", "pods", "-A")["items"] if p["spec"].get("nodeName") == "node-3"]
    assert {p["metadata"]["ownerReferences"][0]["kind"] for p in left} == {"DaemonSet"}
