"""Start-up benchmark (not a test): `signoff run` from process start to the first `GET /healthz` 200,
measured side by side in one run with `python -c "import slack_bolt"` as the floor.

    python bench/startup.py [--runs 15]

The service runs as a deployment does: Slack in HTTP mode (against a fake Slack Web API in a thread of
this script, so `auth.test` is answered on loopback), the HTTP API on, a SQLite file, and a kubeconfig
cluster: `python -m adapters.kubernetes.sandbox` in its own process, reached through a kubeconfig file.
Two kinds of start are measured: a restart on a database that is already migrated (a pod restarting
during an incident) and a first start on an empty database (which also runs the migrations).

Goal (issue 13): < 1.0 s to the first /healthz 200. The floor is the interpreter start plus importing
Bolt, which any Slack app in Python pays before it can answer anything.

Python may cache bytecode (in a temporary PYTHONPYCACHEPREFIX) for every process here, as an installed
package has it (pip compiles at install); `--no-bytecode` measures a source checkout under
PYTHONDONTWRITEBYTECODE=1 instead, where every start compiles signoff's modules again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.fakes.slack import FakeSlack  # noqa: E402

SANDBOX_TOKEN = "bench-startup-sandbox-token"
POLL_S = 0.002


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_sandbox(workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: sandbox, cluster: {{server: \"{url}\"}}}}]\n"
        f"users: [{{name: bench, user: {{token: {SANDBOX_TOKEN}}}}}]\n"
        "contexts: [{name: sandbox, context: {cluster: sandbox, user: bench}}]\n"
        "current-context: sandbox\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.kubernetes.sandbox", "--port", str(port), "--token", SANDBOX_TOKEN],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, kubeconfig
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the sandbox API server did not start")


def time_signoff(env: dict[str, str], workdir: Path) -> float:
    """Seconds from spawning `python -m bot run` to its first /healthz 200; the process is then stopped."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    log = (workdir / "signoff.log").open("ab")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=workdir,
                               env={**env, "SIGNOFF_HTTP_PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT)
    try:
        while not healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"signoff exited with {process.returncode}; see {workdir / 'signoff.log'}")
            if time.perf_counter() - started > 60:
                raise RuntimeError("signoff did not become healthy within 60 s")
            time.sleep(POLL_S)
        return time.perf_counter() - started
    finally:
        log.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def time_floor(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import slack_bolt"], check=True, cwd=ROOT, env=env)
    return time.perf_counter() - started


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered), p90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs of each kind, interleaved")
    parser.add_argument("--no-bytecode", action="store_true", help="PYTHONDONTWRITEBYTECODE=1, as a source checkout")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, FakeSlack.running_in_thread() as slack:
        workdir = Path(tmp)
        ours = ("SIGNOFF_", "SLACK_", "DISCORD_", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
        base = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
        base["PYTHONPATH"] = str(ROOT)
        if args.no_bytecode:
            base["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            base["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
        sandbox, kubeconfig = start_sandbox(workdir, base)
        try:
            env = dict(base)
            env.update({ "KUBECONFIG": str(kubeconfig), "SIGNOFF_CLUSTER": "kubeconfig",
                "SIGNOFF_HTTP_HOST": "127.0.0.1", "SIGNOFF_LOG_FORMAT": "json",
                "SIGNOFF_API_TOKEN": "bench-api-token-0123",
                "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": "bench-signing-secret",
                "SLACK_API_URL": slack.api_url, "SLACK_CHANNEL": "C0BENCH",
            })
            migrated = workdir / "migrated.db"
            restart_env = {**env, "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{migrated}"}
            # Migrates it; caches bytecode and warms the OS file cache for every kind.
            for _ in range(2):
                time_signoff(restart_env, workdir)
                time_floor(base)

            kinds: dict[str, Callable[[int], float]] = {
                "floor: python -c 'import slack_bolt'": lambda i: time_floor(base),
                "signoff run, restart (migrated SQLite)": lambda i: time_signoff(restart_env, workdir),
                "signoff run, first start (empty SQLite)": lambda i: time_signoff(
                    {**env, "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / f'fresh-{i}.db'}"}, workdir),
            }
            results: dict[str, list[float]] = {name: [] for name in kinds}
            for i in range(args.runs):
                for name, run in kinds.items():  # interleaved: a busy moment on the machine hits every kind
                    results[name].append(run(i))
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=10)
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"start-up to the first GET /healthz 200, {args.runs} runs each, interleaved "
          f"(Slack HTTP mode, SQLite, kubeconfig cluster on loopback; "
          f"{'no bytecode cache' if args.no_bytecode else 'bytecode cached'}; "
          f"load average {os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores):")
    print(f"{'':42} {'median':>9} {'p90':>9} {'min':>9} {'max':>9}")
    floor_median = statistics.median(results[next(iter(kinds))])
    for name, values in results.items():
        median, p90 = summary(values)
        print(f"{name:42} {median * 1000:7.0f}ms {p90 * 1000:7.0f}ms {min(values) * 1000:7.0f}ms "
              f"{max(values) * 1000:7.0f}ms")
    for name, values in list(results.items())[1:]:
        median, p90 = summary(values)
        verdict = "✔" if p90 < 1.0 else "✘"
        print(f"{name}: median / floor = {median / floor_median:.2f}; goal p90 < 1.0 s {verdict}")


if __name__ == "__main__":
    main()
