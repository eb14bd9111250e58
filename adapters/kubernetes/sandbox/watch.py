"""`?watch=true` on a list: a stream of watch events, one JSON object per line.

The store keeps no history, so a watch polls the list it stands for and sends the difference:
ADDED for a new object, MODIFIED for a new resourceVersion, DELETED for a vanished one. A watch
from a resourceVersion (an informer's list-then-watch) first sends what changed since then; one
without sends every object as ADDED, as a real API server does. That is what `kubectl rollout
status` and the official client's `watch.Watch` need: they see every state a poll catches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping

from aiohttp import web

from adapters.kubernetes.sandbox.common import JSON

POLL_S = 0.1
MAX_TIMEOUT_S = 1800.0
# Query parameters of a watch that a list does not take.
_WATCH_ONLY = ("watch", "resourceVersion", "resourceVersionMatch", "allowWatchBookmarks", "timeoutSeconds",
               "sendInitialEvents")

Lister = Callable[[Mapping[str, str]], tuple[int, JSON]]


def is_watch(method: str, query: Mapping[str, str]) -> bool:
    return method == "GET" and query.get("watch") in ("true", "1")


def _typed(listing: JSON) -> dict[str, JSON]:
    """The list's items by uid, each with the kind and apiVersion a watch event's object carries."""
    kind = str(listing.get("kind", "")).removesuffix("List")
    version = listing.get("apiVersion", "v1")
    return {
        str(item["metadata"].get("uid") or item["metadata"]["name"]): {"kind": kind, "apiVersion": version, **item}
        for item in listing.get("items") or []
    }


def _rv(obj: JSON) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


async def stream(request: web.Request, query: Mapping[str, str], list_now: Lister, stopping: asyncio.Event,
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
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await response.prepare(request)

    async def send(kind: str, obj: JSON) -> None:
        await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    known = _typed(listing)
    for obj in known.values():
        if since == 0 or _rv(obj) > since:
            await send("ADDED" if since == 0 else "MODIFIED", obj)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), POLL_S)
            code, listing = list_now(listing_query)
            if code != 200:
                break
            current = _typed(listing)
            for uid, obj in current.items():
                old = known.get(uid)
                if old is None:
                    await send("ADDED", obj)
                elif _rv(obj) != _rv(old):
                    await send("MODIFIED", obj)
            for uid, obj in known.items():
                if uid not in current:
                    await send("DELETED", obj)
            known = current
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away: nothing more to say
    return response
