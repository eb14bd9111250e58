"""`signoff sandbox --clusters eu-1,us-1`: several independent clusters and one kubeconfig with a context each,
driven with the real kubectl (skipped without it, as in test_kubectl.py); and check-config on that kubeconfig."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_kubectl import _base_env, _lines, _next, _require_kubectl

ROOT = Path(__file__).resolve().parents[2]


def test_two_sandbox_clusters_one_kubeconfig(tmp_path: Path) -> None:
    kubectl = _require_kubectl()
    home = tmp_path / "home"
    home.mkdir()
    kubeconfig = tmp_path / "fleet.kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox", "--port", "0", "--kubeconfig", str(kubeconfig),
         "--clusters", "eu-1,us-1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_base_env(home),
    )
    env = _base_env(home) | {"KUBECONFIG": str(kubeconfig)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl, *args], capture_output=True, text=True, env=env, timeout=60, check=False)

    try:
        lines = _lines(process)
        first, second = _next(lines, process), _next(lines, process)
        assert first.startswith("sandbox cluster eu-1 serving at https://127.0.0.1:"), first
        assert second.startswith("sandbox cluster us-1 serving at https://127.0.0.1:"), second
        assert _next(lines, process).startswith(f"kubeconfig: {kubeconfig}")
        config = json.loads(kubeconfig.read_text())
        assert [c["name"] for c in config["contexts"]] == ["eu-1", "us-1"]
        assert kubeconfig.stat().st_mode & 0o077 == 0

        listed = run("--context", "us-1", "get", "deploy", "-A")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split("\n")[0].split()[:2] == ["NAMESPACE", "NAME"]
        assert "api" in listed.stdout
        # Independent clusters: a scale on us-1 is not seen on eu-1.
        scaled = run("--context", "us-1", "scale", "deployment/web", "-n", "prod", "--replicas=5")
        assert scaled.returncode == 0, scaled.stderr
        replicas = {}
        for context in ("eu-1", "us-1"):
            got = run("--context", context, "get", "deployment", "web", "-n", "prod", "-o", "json")
            assert got.returncode == 0, got.stderr
            replicas[context] = json.loads(got.stdout)["spec"]["replicas"]
        assert replicas["us-1"] == 5 and replicas["eu-1"] != 5

        # A write as a person the sandbox's RBAC does not allow in prod: kubectl shows the API server's Forbidden.
        denied = run("--context", "us-1", "--as", "dave@example.com", "patch", "deployment", "web", "-n", "prod",
                     "--type=merge", "-p", '{"spec":{"replicas":3}}')
        assert denied.returncode != 0
        assert "Forbidden" in denied.stderr and 'User "dave@example.com" cannot' in denied.stderr, denied.stderr
        allowed = run("--context", "us-1", "--as", "alice@example.com", "--as-group", "sre", "get", "deploy", "-n",
                      "prod")
        assert allowed.returncode == 0, allowed.stderr

        # check-config reads the same kubeconfig: a policy naming a context it lacks is refused with its line.
        policy = tmp_path / "signoff.toml"
        policy.write_text('[clusters.eu-1]\ndefault = true\n\n[clusters.ap-9]\ncontext = "ap-9"\n')
        checked = subprocess.run(
            [sys.executable, "-m", "bot", "check-config"], capture_output=True, text=True, timeout=60, check=False,
            env=env | {"SIGNOFF_POLICY": str(policy), "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"},
            cwd=tmp_path)
        assert checked.returncode != 0
        assert "line 5" in checked.stderr and "no context `ap-9`" in checked.stderr and "eu-1, us-1" in checked.stderr
        policy.write_text('[clusters.eu-1]\ndefault = true\n\n[clusters.us-1]\nrisk_floor = "high"\n')
        checked = subprocess.run(
            [sys.executable, "-m", "bot", "check-config"], capture_output=True, text=True, timeout=60, check=False,
            env=env | {"SIGNOFF_POLICY": str(policy), "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"},
            cwd=tmp_path)
        assert "clusters: 2, default eu-1" in checked.stdout, checked.stderr
        assert "cluster us-1: context us-1; risk floor high" in checked.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
