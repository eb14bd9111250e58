"""The Procfile as a PaaS runs it: the `release` line migrates, the `web` line serves on $PORT."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bot.metrics import EXPORTED
from bot.openapi import OPENAPI_PATH, openapi_document

ROOT = Path(__file__).resolve().parents[2]


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict((part.strip() for part in line.split(":", 1)) for line in lines if line.strip())  # type: ignore[misc]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_procfile_names_the_web_and_release_commands() -> None:
    assert _procfile() == {"web": "signoff run", "release": "signoff db upgrade"}


def test_the_web_line_serves_healthz_on_port(tmp_path: Path) -> None:
    procfile = _procfile()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_", "DISCORD_"))}
    env.pop("PORT", None)
    env.update({
        # The `signoff` script of the environment running the tests; PYTHONPATH makes it this checkout's code.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),  # what a PaaS sets; SIGNOFF_HTTP_PORT is deliberately unset
        "SIGNOFF_API_TOKEN": "procfile-token-0123456789",
        "SIGNOFF_CLUSTER": "sandbox",
        "SIGNOFF_LOG_FORMAT": "json",
        "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/paas.db",
    })
    release = subprocess.run(shlex.split(procfile["release"]), cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120, check=False)
    assert release.returncode == 0, release.stdout + release.stderr

    log = tmp_path / "web.log"
    with log.open("w") as out:
        web = subprocess.Popen(shlex.split(procfile["web"]), cwd=tmp_path, env=env, stdout=out,
                               stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and status != 200:
            assert web.poll() is None, log.read_text()
            try:
                status, _ = _get(base + "/healthz")
            except OSError:
                time.sleep(0.1)
        assert status == 200, log.read_text()

        status, served = _get(base + OPENAPI_PATH)
        assert status == 200 and json.loads(served) == json.loads(json.dumps(openapi_document()))

        status, metrics = _get(base + "/metrics")
        assert status == 200
        for name in ("signoff_requests", "signoff_outbox_backlog", "signoff_outbox_dead",
                     "signoff_outbox_delivered_total", "signoff_outbox_delivery_failures_total"):
            assert name in EXPORTED and f"# TYPE {name} " in metrics
    finally:
        web.terminate()
        web.wait(timeout=30)
    assert web.returncode == 0, log.read_text()
