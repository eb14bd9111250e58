"""An in-memory Kubernetes API server on loopback, for the demo, the console and every test.

It speaks enough of the real API (paths, `Status` errors, `dryRun=All`, resourceVersion
preconditions, strategic-merge / merge / JSON patches, the `scale` subresource) that the
production executor runs against it unchanged, and it simulates just enough of the
controllers (Deployment → ReplicaSet → Pod, StatefulSet, DaemonSet, the scheduler, node
taints, garbage collection) that the cluster stays plausible after each operation.

Controllers converge synchronously right after each persisted write, so tests never wait;
the write's own response is built before they run, as a real API server's is (a PATCH that
changes a Deployment's template answers with the old status, not the finished rollout).

The server runs in its own thread with its own event loop, so it keeps answering while the
caller's loop or thread blocks in the synchronous Kubernetes client. All state lives in
`ApiServer`, which is plain synchronous code guarded by one re-entrant lock shared by the
HTTP handler and the direct accessors (`get`, `objects`, `put`).
The hooks only tests use (request recording, fault injection) live in `testkit/fakes/sandbox.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import threading
from collections.abc import Mapping
from types import TracebackType

import structlog
from aiohttp import web

from adapters.kubernetes.sandbox.api import ApiServer
from adapters.kubernetes.sandbox.common import JSON, _clone, _labels
from adapters.kubernetes.sandbox.errors import _status_object
from adapters.kubernetes.sandbox.rbac import AUTHENTICATED, MASTERS, SAR_PATH, SSAR_PATH, SSRR_PATH, Rbac
from adapters.kubernetes.sandbox.rbac_objects import DISCOVERY, WHOAMI_PATH, whoami, with_groups
from adapters.kubernetes.sandbox.resources import _resource_for
from adapters.kubernetes.sandbox.selectors import _parse_label_selector
from adapters.kubernetes.sandbox.table import as_table, wants_table
from adapters.kubernetes.sandbox.tls import TlsMaterial
from adapters.kubernetes.sandbox.watch import PULSE_S, Faults, Pulse, is_watch, stream
from adapters.kubernetes.sandbox.world import _container, _deployment
from adapters.kubernetes.sandbox.world import seed as seed_world
from adapters.loopthread import LoopThread

log = structlog.get_logger(__name__)

THREAD_NAME = "signoff-sandbox"
# Who the call is judged as (after impersonation): the user a SelfSubjectAccessReview asks about.
CALLER = web.RequestKey("sandbox_caller", tuple)


class SandboxCluster:
    """A loopback Kubernetes API server with a seeded cluster.

    `start()` serves it from a background thread and returns the base URL; `stop()` (or the
    context manager) shuts it down. Every request needs `Authorization: Bearer <token>`.
    """

    def __init__(
        self,
        seed: bool = True,
        token: str = "sandbox-token",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsMaterial | None = None,
        ready_delay: float = 0.0,
    ) -> None:
        self._token = token
        self.rbac = Rbac()  # RBAC objects and their evaluation (rbac.py, rbac_objects.py)
        # Bearer token → (user, groups). The sandbox's own token is an admin; tests may add other callers.
        self.users: dict[str, tuple[str, tuple[str, ...]]] = {token: ("sandbox-admin", (MASTERS, AUTHENTICATED))}
        self._tls = tls
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._server = ApiServer()
        # Seconds new pods take to become Ready (a workload's sandbox.signoff.dev/ready-after wins).
        self._server.ready_delay = ready_delay
        self._thread: LoopThread | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._closing: asyncio.Event | None = None
        self._pulse: Pulse | None = None
        self._pulsing: asyncio.Task[None] | None = None
        # Watches a test breaks (`break_watches`), and how many watch requests were served.
        self.watch_faults = Faults()
        if seed:
            seed_world(self._server)
            self.rbac.seed()

    # ---- lifetime

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the sandbox is not started; call start() first")
        return self._url

    @property
    def token(self) -> str:
        return self._token

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.alive

    def start(self) -> str:
        if self._url is not None:
            return self._url
        thread = LoopThread(THREAD_NAME)
        try:
            thread.call(self._open(), timeout=10)
        except TimeoutError as error:
            thread.stop()
            raise RuntimeError("the sandbox API server did not start within 10 s") from error
        except Exception as error:
            thread.stop()
            raise RuntimeError(f"the sandbox API server could not start: {error}") from error
        self._thread = thread
        log.info("sandbox.started", url=self._url)
        return self.url

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        try:
            thread.call(self._shutdown(), timeout=10)
        finally:
            thread.stop()
            self._thread = None
            self._url = None
        log.info("sandbox.stopped")

    def __enter__(self) -> SandboxCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def _open(self) -> None:
        self._closing = asyncio.Event()  # ends open watches at once on stop
        self._pulse = Pulse()
        self._pulsing = asyncio.get_running_loop().create_task(self._pulse_on_changes(self._pulse))
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Requests held back (by a test's delay) end at once on stop, so a short shutdown timeout
        # never cuts a real answer.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self._host, self._port))
        sock.setblocking(False)
        # HTTPS when asked (`signoff sandbox`): kubectl sends a bearer token only over TLS.
        ssl_context = self._tls.server_context() if self._tls is not None else None
        site = web.SockSite(self._runner, sock, ssl_context=ssl_context)
        await site.start()
        host, port = sock.getsockname()[:2]
        self._server.address = f"{host}:{port}"
        self._url = f"{'https' if ssl_context is not None else 'http'}://{host}:{port}"

    async def _pulse_on_changes(self, pulse: Pulse) -> None:
        """Time moves the sandbox too (pods turn Ready, crash loops count up): tick, and wake the watches
        whenever the store changed."""
        seen = -1
        while True:
            with self._lock:
                self._server.tick()
                version = self._server.resource_version
            if version != seen:
                seen = version
                pulse.fire()
            await asyncio.sleep(PULSE_S)

    def _changes(self, since: int) -> tuple[int, list[tuple[int, str, JSON]]] | None:
        with self._lock:
            store = self._server
            if since < store.events_floor:
                return None
            found = []
            for event in reversed(store.events):
                if event[0] <= since:
                    break
                found.append(event)
            found.reverse()
            return store.resource_version, found

    async def _shutdown(self) -> None:
        if self._pulsing is not None:
            self._pulsing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pulsing
            self._pulsing = None
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        caller = self.users.get(authorization.removeprefix("Bearer ")) if authorization.startswith("Bearer ") \
            else None
        if caller is None:
            return respond(401, _status_object(401, "Unauthorized", "Unauthorized"))
        user, groups = caller
        wanted = request.headers.get("Impersonate-User")
        if wanted is not None:  # allowed only to a caller whose RBAC grants `impersonate`; then judged as them
            wanted_groups = tuple(request.headers.getall("Impersonate-Group", []))
            refused = self.rbac.impersonation_refused(user, groups, wanted, wanted_groups)
            if refused is not None:
                return respond(403, refused)
            user, groups = wanted, (*wanted_groups, AUTHENTICATED)
        refused = self.rbac.forbidden(user, groups, request.method, request.path, request.query)
        if refused is not None:
            return respond(403, refused)
        request[CALLER] = (user, groups)
        return await self._answer(request)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        """An authenticated request, answered by the API server."""
        method, path = request.method, request.path
        body = await request.read()
        if method == "POST" and path in (SAR_PATH, SSAR_PATH):
            asker = request.get(CALLER) if path == SSAR_PATH else None
            return respond(201, self.rbac.review(json.loads(body or b"{}"), asker))
        if method == "POST" and path == WHOAMI_PATH:
            return respond(201, whoami(*request[CALLER]))
        if method == "POST" and path == SSRR_PATH:
            return respond(201, self.rbac.rules_review(json.loads(body or b"{}"), *request[CALLER]))
        if path.rstrip("/") in DISCOVERY and method == "GET":
            return respond(200, DISCOVERY[path.rstrip("/")])
        user, groups = request[CALLER]
        answered = self.rbac.objects.handle(method, path, request.query, request.content_type, body,
                                            lambda obj: self.rbac.escalation(user, groups, obj))
        if answered is not None:
            code, payload = answered
            if code == 200 and method == "GET" and wants_table(request.headers.get("Accept", "")) \
                    and "metadata" in payload and payload.get("kind") != "Status":
                payload = as_table(payload)
            return respond(code, payload)
        # aiohttp reports a missing Content-Type as octet-stream; the API server reads it as JSON.
        content_type = request.content_type if "Content-Type" in request.headers else ""
        if is_watch(method, request.query) and self._closing is not None and self._pulse is not None:
            def list_now(query: Mapping[str, str]) -> tuple[int, JSON]:
                with self._lock:
                    return self._call("GET", path, dict(query), "", b"")

            try:
                belongs = self._server.watched(path, request.query)
            except Exception:  # a bad path or selector: the list answers with the error
                def belongs(obj: JSON) -> bool:
                    return False
            return await stream(request, dict(request.query), list_now, self._changes, belongs, self._closing,
                                self._pulse, self.watch_faults)
        with self._lock:
            code, payload = self._call(method, path, dict(request.query), content_type, body)
            if code == 200 and method == "GET" and wants_table(request.headers.get("Accept", "")) \
                    and payload.get("kind") not in (None, "Status", "Scale") and "metadata" in payload:
                payload = as_table(payload)  # what `kubectl get` prints
            text = json.dumps(payload)
        log.debug("sandbox.request", method=method, path=path, status=code)
        return web.Response(status=code, text=text, content_type="application/json")

    def _call(self, method: str, path: str, query: dict[str, str], content_type: str,
              body: bytes) -> tuple[int, JSON]:
        """The API server's answer (called under the lock)."""
        try:
            self._server.tick()
            code, payload = self._server.handle(method, path, query, content_type, body)
            if code == 200 and method == "GET" and path.rstrip("/") == "/apis":
                payload = with_groups(payload)  # the RBAC and authorization groups (rbac_objects.py)
            return code, payload
        except Exception as error:  # a sandbox bug must surface as a 500 Status, not a hang
            log.exception("sandbox.internal_error", method=method, path=path)
            return 500, _status_object(500, "InternalError", f"sandbox error: {error!r}")

    # ---- direct access (the demo, the console, tests)

    def get(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        """A deep copy of the stored object, or None."""
        resource = _resource_for(kind)
        with self._lock:
            self._server.tick()
            obj = self._server.find(resource.kind, namespace if resource.namespaced else None, name)
            return _clone(obj) if obj is not None else None

    def objects(self, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[JSON]:
        """Deep copies of the stored objects of a kind (all namespaces when namespace is None)."""
        resource = _resource_for(kind)
        requirements = _parse_label_selector(label_selector) if label_selector else []
        with self._lock:
            self._server.tick()
            found = self._server.all(resource.kind, namespace)
            return [_clone(o) for o in found if all(r.matches(_labels(o)) for r in requirements)]

    def put(self, obj: JSON) -> JSON:
        """Add or replace an object as a write would (new resourceVersion), then run the controllers."""
        with self._lock:
            return self._server.put(obj)

    def add_deployments(self, namespace: str, count: int, *, prefix: str = "app", replicas: int = 1) -> list[str]:
        """A namespace of small one-container deployments: one target per request for harnesses that
        need to attribute every write to the request that made it."""
        names = [f"{prefix}-{index:04d}" for index in range(count)]
        with self._lock:
            if self._server.find("Namespace", None, namespace) is None:
                self._server.put({"kind": "Namespace", "metadata": {"name": namespace},
                                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
            for name in names:
                # One controller pass for the lot: reconciling after each put is quadratic.
                self._server.put(_deployment(namespace, name, replicas,
                                             _container(name, f"ghcr.io/acme/{prefix}:1.0.0", 8080),
                                             labels={"app": name}), reconcile=False)
            self._server.reconcile()
        return names

    def delete_object(self, kind: str, namespace: str | None, name: str) -> bool:
        """Remove an object outright (dependents are garbage-collected); False if it was absent."""
        with self._lock:
            return self._server.delete_object(kind, namespace, name)

    def advance(self, seconds: float) -> None:
        """Move the sandbox's clock on (tests): pods due turn Ready, progress deadlines pass."""
        with self._lock:
            self._server.advance(seconds)

    def set_ready_delay(self, seconds: float) -> None:
        with self._lock:
            self._server.ready_delay = seconds

    def break_watches(self, count: int = 1) -> None:
        """The next `count` watch requests end at once with 410 Gone (a watch cache that moved on)."""
        with self._lock:
            self.watch_faults.gone += count

    def cut_watches(self) -> None:
        """Every open watch ends now with 410 Gone (the connection a client must recover from)."""
        with self._lock:
            self.watch_faults.cuts += 1
        if self._thread is not None and self._pulse is not None:
            pulse = self._pulse
            self._thread.loop.call_soon_threadsafe(pulse.fire)

    @property
    def watches_served(self) -> int:
        return self.watch_faults.served

    def set_restart_interval(self, seconds: float) -> None:
        """The first crash-loop back-off (then doubling): faults count restarts this fast."""
        with self._lock:
            self._server.restart_interval = seconds

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._server.resource_version


def respond(status: int, payload: JSON) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload), content_type="application/json")


def main(argv: list[str] | None = None, cluster: type[SandboxCluster] | None = None) -> None:
    """`python -m adapters.kubernetes.sandbox`: serve the sandbox cluster until killed (for harnesses
    whose signoff processes come and go, e.g. the crash test). `cluster`: a subclass to serve instead."""
    parser = argparse.ArgumentParser(description="the signoff sandbox Kubernetes API server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="sandbox-token")
    parser.add_argument("--deployments", type=int, default=0, help="extra one-replica deployments in `crash`")
    args = parser.parse_args(argv)
    sandbox = (cluster or SandboxCluster)(token=args.token, port=args.port)
    if args.deployments:
        sandbox.add_deployments("crash", args.deployments)
    url = sandbox.start()
    print(url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()

