"""`?watch=true` on a list: a stream of watch events, one JSON object per line.

The store remembers its recent changes (a real API server's watch cache), so a watch sends exactly
what happened: ADDED, MODIFIED, DELETED, in resourceVersion order. A watch from a resourceVersion (an
informer's list-then-watch) first sends what changed since then; one without sends every object as
ADDED, as a real API server does. A watch from a resourceVersion older than what the store remembers
gets an ERROR event with a 410 Gone Status, and the client lists again. With `allowWatchBookmarks`
the stream sends a BOOKMARK every second (a client can check its stop flag). The server wakes its
watches when the store changes (`Pulse`), so an event goes out within a few milliseconds.

`Faults` lets a test break watches: the next N are answered with an ERROR 410 event and ended, or every
open one is ended so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from adapters.kubernetes.sandbox.common import JSON

PULSE_S = 0.01
BOOKMARK_S = 1.0
MAX_TIMEOUT_S = 1800.0
# Query parameters of a watch that a list does not take.
_WATCH_ONLY = ("watch", "resourceVersion", "resourceVersionMatch", "allowWatchBookmarks", "timeoutSeconds",
               "sendInitialEvents")

Lister = Callable[[Mapping[str, str]], tuple[int, JSON]]
# What changed after a resourceVersion: (the current resourceVersion, the events after it), or None when the
# store no longer remembers that far back (410 Gone).
Changes = Callable[[int], tuple[int, list[tuple[int, str, JSON]]] | None]


def is_watch(method: str, query: Mapping[str, str]) -> bool:
    return method == "GET" and query.get("watch") in ("true", "1")


@dataclass
class Faults:
    """Watches a test breaks: the next `gone` watch requests end at once with 410 Gone."""

    gone: int = 0
    served: int = 0  # watch requests answered, for tests that count them
    cuts: int = 0  # bumped to end every open watch with 410 Gone (`cut_watches`)

    def take(self) -> bool:
        self.served += 1
        if self.gone > 0:
            self.gone -= 1
            return True
        return False


@dataclass
class Pulse:
    """Wakes every open watch when the store changed (one waiter, however many watches)."""

    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def fire(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    @staticmethod
    async def wait(ticket: asyncio.Event, timeout: float) -> None:
        """Wait for a change after `ticket` was taken (`pulse.changed` before looking), or the timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await ticket.wait()


def _gone(since: int) -> JSON:
    return {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Expired", "code": 410,
        "message": f"too old resource version: {since}",
    }}


def _typed(listing: JSON) -> list[JSON]:
    kind = str(listing.get("kind", "")).removesuffix("List")
    version = listing.get("apiVersion", "v1")
    return [{"kind": kind, "apiVersion": version, **item} for item in listing.get("items") or []]


async def stream(request: web.Request, query: Mapping[str, str], list_now: Lister, changes: Changes,
                 belongs: Callable[[JSON], bool], stopping: asyncio.Event, pulse: Pulse, faults: Faults,
                 ) -> web.StreamResponse:
    """Answer a watch request until its timeout, the client leaving, or the server stopping."""
    listing_query = {k: v for k, v in query.items() if k not in _WATCH_ONLY}
    code, listing = list_now(listing_query)
    if code != 200:
        return web.Response(status=code, text=json.dumps(listing), content_type="application/json")
    try:
        since = int(query.get("resourceVersion") or 0)
        timeout = min(float(query.get("timeoutSeconds") or MAX_TIMEOUT_S), MAX_TIMEOUT_S)
    except ValueError:
        since, timeout = 0, MAX_TIMEOUT_S
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await response.prepare(request)

    async def send(event: JSON) -> None:
        await response.write(json.dumps(event).encode() + b"\n")

    try:
        if faults.take():
            await send(_gone(since))
            await response.write_eof()
            return response
        if since == 0:
            since = int((listing.get("metadata") or {}).get("resourceVersion") or 0)
            for obj in _typed(listing):
                await send({"type": "ADDED", "object": obj})
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()
        cuts = faults.cuts
        while not stopping.is_set():
            if faults.cuts != cuts:
                await send(_gone(since))
                break
            ticket = pulse.changed
            found = changes(since)
            if found is None:
                await send(_gone(since))
                break
            since, events = found
            for _, kind, obj in events:
                if belongs(obj):
                    await send({"type": kind, "object": obj})
            now = time.monotonic()
            if now >= deadline:
                break
            if bookmarks and now - last_bookmark >= BOOKMARK_S:
                last_bookmark = now
                kind = str(listing.get("kind", "")).removesuffix("List")
                await send({"type": "BOOKMARK", "object": {
                    "kind": kind, "apiVersion": listing.get("apiVersion", "v1"),
                    "metadata": {"resourceVersion": str(since)}}})
            await pulse.wait(ticket, min(BOOKMARK_S, max(0.0, deadline - now)))
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away: nothing more to say
    return response
