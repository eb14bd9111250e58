"""Following a rollout with watches: the workload and its pods, kept current by two watch streams.

One verification costs three calls: a watch of the workload (`fieldSelector=metadata.name=…`, whose first
event is the object as it is), a list of its pods (`labelSelector`, giving a resourceVersion), and a watch
of the pods from that resourceVersion. Each stream runs in its own thread (the client blocks), with
`timeoutSeconds` and bookmarks, and a stop flag checked at every event. A watch that breaks (410 Gone,
a dropped connection) marks the follow broken: the looks then poll, a read of each per look.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from kubernetes.watch.watch import iter_resp_lines

from adapters.kubernetes.calls import JSON, Calls

log = structlog.get_logger(__name__)

WATCH_TIMEOUT_S = 300  # a stream's timeoutSeconds; a longer verification watches again from where it was
FIRST_EVENT_S = 5.0  # how long the first look waits for the workload's first event before reading it
IDLE_S = 1800.0  # a follow nobody looked at this long is stopped (its verification ended elsewhere)

Wake = Callable[[str], None]


class Follow:
    """One verification's view of its workload (`workload`) and pods (`pods`, by uid)."""

    def __init__(self, key: str, calls: Calls, *, reader: Callable[..., Any], pod_lister: Callable[..., Any],
                 name: str, namespace: str, wake: Wake | None, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self._calls = calls
        self._reader = reader
        self._pod_lister = pod_lister
        self._name = name
        self._namespace = namespace
        self._wake = wake
        self._loop = loop
        self.workload: JSON | None = None
        self.pods: dict[str, JSON] = {}
        self.broken = False
        self.stopped = threading.Event()
        self.looked_at = time.monotonic()
        self.starting = asyncio.Lock()
        self.began = False
        self.pods_since = ""  # the pods were listed (at this resourceVersion) and are watched
        self._first = asyncio.Event()  # set on the loop: the workload's first event came, or the watch broke
        self._lock = threading.Lock()
        self._responses: list[Any] = []

    # ---- the streams

    async def start(self) -> bool:
        """Watch the workload, until its first event; False when the watch could not begin."""
        # Thread.start waits for the thread to run: off the loop, which many starting follows would stall.
        await asyncio.to_thread(threading.Thread(
            target=self._run, args=(self._reader, {"field_selector": f"metadata.name={self._name}"}, None,
                                    self._on_workload), name=f"watch-{self.key}", daemon=True).start)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_EVENT_S):
                await self._first.wait()
        if self.workload is None:
            self.broken = True
            return False
        return True

    async def watch_pods(self, selector: str, listed: JSON) -> None:
        """The pods as listed (`labelSelector`), then watched from the list's resourceVersion."""
        with self._lock:
            self.pods = {str(p["metadata"].get("uid")): p for p in listed.get("items") or []}
        since = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        self.pods_since = since
        await asyncio.to_thread(threading.Thread(
            target=self._run, args=(self._pod_lister, {"label_selector": selector}, since, self._on_pod),
            name=f"watch-pods-{self.key}", daemon=True).start)

    def _run(self, lister: Callable[..., Any], selector: dict[str, str], since: str | None,
             apply: Callable[[str, JSON], None]) -> None:
        """One stream, watched again from its last resourceVersion when the server ends it (timeoutSeconds)."""
        try:
            while not self.stopped.is_set():
                args: dict[str, Any] = {"watch": True, "timeout_seconds": WATCH_TIMEOUT_S,
                                        "allow_watch_bookmarks": True, "_preload_content": False,
                                        "_request_timeout": (self._calls.timeout, WATCH_TIMEOUT_S + 30), **selector}
                if since:
                    args["resource_version"] = since
                response = lister(self._namespace, **args)
                with self._lock:
                    self._responses.append(response)
                try:
                    for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                        if self.stopped.is_set():
                            return
                        event = json.loads(line)
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            raise WatchBroken(f"{obj.get('code')} {obj.get('reason')}: {obj.get('message')}")
                        since = str((obj.get("metadata") or {}).get("resourceVersion") or since or "")
                        if kind != "BOOKMARK":
                            apply(str(kind), obj)
                finally:
                    with self._lock:
                        self._responses.remove(response)
                    response.release_conn()
        except Exception as error:  # a broken watch: the looks poll from now on
            if not self.stopped.is_set():
                log.info("kubernetes.watch_broken", follow=self.key, error=str(error)[:200],
                         error_type=type(error).__name__)
                self.broken = True
                self._notify()

    def _on_workload(self, kind: str, obj: JSON) -> None:
        if kind == "DELETED":  # gone: the next look reads it, and says so
            self.broken = True
            self.stopped.set()
        else:
            self.workload = obj
        self._notify()

    def _on_pod(self, kind: str, obj: JSON) -> None:
        uid = str((obj.get("metadata") or {}).get("uid"))
        with self._lock:
            if kind == "DELETED":
                self.pods.pop(uid, None)
            else:
                self.pods[uid] = obj
        self._notify()

    def _notify(self) -> None:
        if not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._changed)

    def _changed(self) -> None:
        self._first.set()
        if self._wake is not None:
            self._wake(self.key)

    # ---- what the looks read

    def pod_list(self) -> list[JSON]:
        with self._lock:
            return list(self.pods.values())

    def stop(self) -> None:
        """Ends both streams: the flag, and the connections shut under a blocked read."""
        self.stopped.set()
        with self._lock:
            responses = list(self._responses)
        for response in responses:
            with contextlib.suppress(Exception):
                response.shutdown()


class WatchBroken(Exception):
    """The server ended a watch with an ERROR event (410 Gone: the resourceVersion is too old)."""
