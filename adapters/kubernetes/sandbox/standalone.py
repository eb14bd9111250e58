"""`signoff sandbox`: the sandbox cluster over HTTPS, with a kubeconfig kubectl accepts.

It serves until SIGINT or SIGTERM. The kubeconfig carries the run's fresh CA and a random bearer
token, so `KUBECONFIG=<path> kubectl get pods -n prod` and `SIGNOFF_CLUSTER=kubeconfig
KUBECONFIG=<path> signoff console` look at the same cluster side by side.
"""

from __future__ import annotations

import secrets
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TextIO

import structlog

from adapters.kubernetes.sandbox.server import SandboxCluster
from adapters.kubernetes.sandbox.tls import generate, kubeconfig, kubeconfig_for_clusters, write_private

log = structlog.get_logger(__name__)

DEFAULT_PORT = 6443


def default_kubeconfig_path() -> Path:
    return Path(tempfile.gettempdir()) / "signoff-sandbox" / "kubeconfig"


def serve(
    *,
    port: int = DEFAULT_PORT,
    kubeconfig_path: Path | None = None,
    token: str | None = None,
    out: TextIO,
    stop: threading.Event | None = None,
    clusters: list[str] | None = None,
) -> int:
    """Serve until `stop` is set (by SIGINT/SIGTERM when running in the main thread). `clusters`: several
    independent sandbox clusters (the first on `port`, the others on free ports), one context each."""
    if clusters:
        return _serve_several(clusters, port=port, kubeconfig_path=kubeconfig_path, out=out, stop=stop)
    path = kubeconfig_path or default_kubeconfig_path()
    material = generate()
    sandbox = SandboxCluster(token=token or secrets.token_urlsafe(32), port=port, tls=material)
    try:
        url = sandbox.start()
    except RuntimeError as error:
        print(f"signoff: could not serve the sandbox on port {port}: {error}", file=sys.stderr)
        return 2
    stop = stop or threading.Event()
    try:
        write_private(path, kubeconfig(url, sandbox.token, material.ca_pem, namespace="prod"))
        _on_signals(stop)
        print(f"sandbox cluster serving at {url} (stop with Ctrl-C)", file=out)
        print(f"kubeconfig: {path}", file=out)
        print(f"  KUBECONFIG={path} kubectl get pods -n prod", file=out)
        print(f"  SIGNOFF_CLUSTER=kubeconfig KUBECONFIG={path} signoff console", file=out, flush=True)
        log.info("sandbox.serving", url=url, kubeconfig=str(path))
        while not stop.wait(0.5):  # a short wait, so a signal handler runs promptly
            pass
    finally:
        sandbox.stop()
    print("sandbox stopped", file=out, flush=True)
    return 0


def _on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())


def _serve_several(names: list[str], *, port: int, kubeconfig_path: Path | None, out: TextIO,
                   stop: threading.Event | None) -> int:
    """Several sandbox clusters, each its own API server, objects and token, behind one CA and one kubeconfig."""
    path = kubeconfig_path or default_kubeconfig_path()
    material = generate()
    started: list[tuple[str, SandboxCluster, str]] = []
    stop = stop or threading.Event()
    try:
        for index, name in enumerate(names):
            chosen = port if index == 0 else 0
            sandbox = SandboxCluster(token=secrets.token_urlsafe(32), port=chosen, tls=material)
            try:
                url = sandbox.start()
            except RuntimeError as error:
                print(f"signoff: could not serve the sandbox {name} on port {chosen}: {error}", file=sys.stderr)
                return 2
            started.append((name, sandbox, url))
        entries = [(name, url, sandbox.token) for name, sandbox, url in started]
        write_private(path, kubeconfig_for_clusters(entries, material.ca_pem, namespace="prod"))
        _on_signals(stop)
        for name, _, url in started:
            print(f"sandbox cluster {name} serving at {url}", file=out)
        print(f"kubeconfig: {path} (contexts {', '.join(names)}; stop with Ctrl-C)", file=out)
        print(f"  KUBECONFIG={path} kubectl --context {names[-1]} get deploy -A", file=out)
        print(f"  SIGNOFF_CLUSTER=kubeconfig KUBECONFIG={path} signoff console  "
              f"# with [clusters.{names[0]}] … in the policy", file=out, flush=True)
        log.info("sandbox.serving", clusters=",".join(names), kubeconfig=str(path))
        while not stop.wait(0.5):
            pass
    finally:
        for _, sandbox, _ in started:
            sandbox.stop()
    print("sandbox stopped", file=out, flush=True)
    return 0
