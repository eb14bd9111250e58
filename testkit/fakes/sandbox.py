"""The sandbox API server with the hooks only tests and benches use: request recording, fault
injection, and actions run just before a request (a concurrent writer racing it).

`python -m testkit.fakes.sandbox --port P --token T` serves it in its own process, with two extra
routes for a harness there: `GET /_sandbox/requests` (the recorded calls, the last 50,000; `DELETE` forgets
them) and `POST
/_sandbox/faults?fraction=0.3&seed=1&statuses=500,409&timeout_delay=2` (random faults), `POST
/_sandbox/ready_delay?seconds=1.5` (new pods turn Ready later).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import structlog
from aiohttp import web

from adapters.kubernetes.executor import KubernetesCluster
from adapters.kubernetes.sandbox import SandboxCluster
from adapters.kubernetes.sandbox.common import JSON
from adapters.kubernetes.sandbox.errors import _status_object
from adapters.kubernetes.sandbox.server import main, respond
from testkit.support.loopback import Fault, FaultBook, StopAwareSleep

log = structlog.get_logger(__name__)

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class RecordedRequest(NamedTuple):
    method: str
    path: str
    query: dict[str, str]


@dataclass
class _Hook:
    method: str
    pattern: re.Pattern[str]
    action: Callable[[HookedSandbox], object]
    times: int | None
    fired: int = field(default=0)


class HookedSandbox(SandboxCluster, StopAwareSleep):
    """`SandboxCluster` plus recording, faults and hooks; everything else is the product's code."""

    def __init__(self, seed: bool = True, token: str = "sandbox-token", *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        super().__init__(seed, token, host=host, port=port)
        # Bounded, so a long harness run does not grow without end.
        self._requests: deque[RecordedRequest] = deque(maxlen=50_000)
        self.faults = FaultBook(self._lock)
        self._hooks: list[_Hook] = []

    # ---- the hooks

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int | None = 500,
        reason: str = "InternalError",
        *,
        times: int | None = 1,
        delay: float = 0.0,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests (None: all) with a Status error.

        `delay` holds the answer back first (beyond the client's timeout it is a timeout);
        `status=None` with a delay serves the request normally, only late.
        """
        self.faults.add(Fault(method.upper(), re.compile(path_regex), "status", times, status=status,
                              seconds=delay, error=reason, message=message))

    def inject_random(
        self,
        fraction: float,
        seed: int,
        statuses: Sequence[int] = (500,),
        timeout_delay: float | None = None,
    ) -> None:
        """Fail a seeded-random `fraction` of requests with one of `statuses` (or, when
        `timeout_delay` is given, sometimes answer only after that delay)."""
        outcomes = [Fault("*", None, "status", 1, status=s, error=REASONS.get(s, "InternalError"))
                    for s in statuses]
        if timeout_delay is not None:
            # A slow answer that still happens: the write may land after the client gave up.
            outcomes.append(Fault("*", None, "late", 1, status=None, seconds=timeout_delay))
        self.faults.randomly(fraction, seed, outcomes)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self._hooks.clear()

    def on_request(
        self,
        method: str,
        path_regex: str,
        action: Callable[[HookedSandbox], object],
        times: int | None = 1,
    ) -> None:
        """Run `action(sandbox)` just before a matching request is processed (None: every time).

        It runs in the server thread under the store lock, so it can call `put`/`get` to
        simulate a concurrent writer racing the request.
        """
        with self._lock:
            self._hooks.append(_Hook(method.upper(), re.compile(path_regex), action, times))

    # ---- where they act

    async def _open(self) -> None:
        self._stopping = asyncio.Event()
        await super()._open()

    async def _shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        await super()._shutdown()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._requests.append(RecordedRequest(request.method, request.path, dict(request.query)))
        return await super()._handle(request)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        method, path, query = request.method, request.path, dict(request.query)
        if path == "/_sandbox/requests" and method == "DELETE":
            self.clear_requests()
            return respond(200, {"requests": []})
        if path == "/_sandbox/requests":
            with self._lock:
                rows = [{"method": r.method, "path": r.path, "query": r.query} for r in self._requests]
            return respond(200, {"requests": rows})
        if path == "/_sandbox/faults" and method == "POST":
            statuses = tuple(int(x) for x in query.get("statuses", "500").split(","))
            delay = float(query["timeout_delay"]) if "timeout_delay" in query else None
            self.inject_random(float(query.get("fraction", "0")), int(query.get("seed", "0")), statuses, delay)
            return respond(200, {"faults": "on"})
        if path == "/_sandbox/ready_delay" and method == "POST":  # new pods turn Ready this many seconds later
            self.set_ready_delay(float(query.get("seconds", "0")))
            return respond(200, {"ready_delay": float(query.get("seconds", "0"))})
        fault = self.faults.take(method, path)
        if fault is not None:
            if fault.seconds > 0:
                await self._sleep(fault.seconds)
                if self.stopping:
                    # Shutting down: a held-back request must not write into a stopping server.
                    return respond(503, _status_object(503, "ServiceUnavailable", "the sandbox is stopping"))
            if fault.status is not None:
                log.info("sandbox.fault_injected", method=method, path=path, status=fault.status,
                         delay=fault.seconds)
                message = fault.message or f"injected fault: {fault.error} on {method} {path}"
                details: JSON = {"retryAfterSeconds": 1} if fault.status in (429, 503) else {}
                return respond(fault.status, _status_object(fault.status, fault.error, message, details))
        return await super()._answer(request)

    def _call(self, method: str, path: str, query: dict[str, str], content_type: str,
              body: bytes) -> tuple[int, JSON]:
        for hook in list(self._hooks):
            if hook.method not in ("*", method) or not hook.pattern.search(path):
                continue
            hook.fired += 1
            if hook.times is not None and hook.fired >= hook.times:
                self._hooks.remove(hook)
            hook.action(self)
        return super()._call(method, path, query, content_type, body)


@contextlib.asynccontextmanager
async def hooked_cluster(request_timeout: float) -> AsyncIterator[tuple[HookedSandbox, KubernetesCluster]]:
    """A started seeded `HookedSandbox` and the production executor pointed at it, as
    `SIGNOFF_CLUSTER=sandbox` builds them but with the hooks (pass the cluster to `bootstrap`)."""
    sandbox = HookedSandbox(seed=True)
    url = await asyncio.to_thread(sandbox.start)
    try:
        cluster = KubernetesCluster.for_url(url, sandbox.token, request_timeout=request_timeout)
        try:
            yield sandbox, cluster
        finally:
            cluster.close()
    finally:
        await asyncio.to_thread(sandbox.stop)


if __name__ == "__main__":
    main(cluster=HookedSandbox)
