"""What every loopback fake shares: its own event loop on a thread, its port, waiting for a
change, and fault injection (the fake Slack, the fake Discord and the test sandbox).

Each fake keeps only what differs: its routes and how it answers a fault on its wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Self, TypeVar

from aiohttp import web

from adapters.loopthread import LoopThread

T = TypeVar("T")


@dataclass
class Fault:
    """One planned misbehaviour. `kind` is the fake's own word ("status", "429", "timeout", "delay")."""

    method: str  # an HTTP method or API method name, or "*"
    pattern: re.Pattern[str] | None  # searched in the path; None: every path
    kind: str
    remaining: int | None  # None: until cleared
    status: int | None = 500
    seconds: float = 0.0
    retry_after: float = 1.0
    error: str = ""  # Slack's error name, Kubernetes' reason
    message: str | None = None
    commit: bool = False  # apply the request, then answer with the failure
    global_: bool = False

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and (self.pattern is None or self.pattern.search(path) is not None)


def full_path(regex: str) -> re.Pattern[str]:
    """A pattern that `Fault.matches` only when it matches the whole path."""
    return re.compile(rf"^(?:{regex})\Z")


@dataclass
class _Chance:
    fraction: float
    rng: random.Random
    outcomes: tuple[Fault, ...]
    applies: Callable[[str, str], bool]


class FaultBook:
    """Planned faults (first match wins, counted down) and, after them, seeded random ones."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._planned: list[Fault] = []
        self._chance: _Chance | None = None
        self.taken = 0  # how many faults were served: a test can check its faults really fired

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._planned.append(fault)

    def randomly(self, fraction: float, seed: int | None, outcomes: Sequence[Fault],
                 applies: Callable[[str, str], bool] = lambda method, path: True) -> None:
        """Answer about `fraction` of the requests `applies` to with a copy of one of `outcomes`."""
        with self._lock:
            self._chance = _Chance(fraction, random.Random(seed), tuple(outcomes), applies)

    def clear(self) -> None:
        with self._lock:
            self._planned.clear()
            self._chance = None

    def take(self, method: str, path: str = "", *, kinds: Callable[[str], bool] = lambda kind: True,
             chance: bool = True) -> Fault | None:
        """The fault for this request, if any: planned ones of the accepted `kinds` first, then chance."""
        with self._lock:
            for fault in self._planned:
                if kinds(fault.kind) and fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._planned.remove(fault)
                    self.taken += 1
                    return fault
            odds = self._chance
            if not chance or odds is None or not odds.outcomes or not odds.applies(method, path):
                return None
            if odds.rng.random() >= odds.fraction:
                return None
            self.taken += 1
            return replace(odds.rng.choice(odds.outcomes), method=method, remaining=1)


class StopAwareSleep:
    """Sleeps that end early once the server stops, so held-back handlers never delay shutdown."""

    _stopping: asyncio.Event | None = None

    async def _sleep(self, seconds: float) -> None:
        stopping = self._stopping
        assert stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)

    @property
    def stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()


class LoopbackServer(StopAwareSleep):
    """An aiohttp server on 127.0.0.1 served from the caller's loop (`async with fake:`) or from a
    thread of its own (`with Fake.running_in_thread() as fake:`, for a bot that is a subprocess)."""

    thread_name = "loopback-fake"
    poll_interval: float | None = None  # also re-check waits this often (for predicates on client state)

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        # State is mutated on the fake's loop but may be read from a test thread (running_in_thread).
        self._lock = threading.RLock()
        self.faults = FaultBook(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None

    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def _closing(self) -> None:
        """Close what the fake holds open (websockets) before the port is freed."""

    def _recent(self) -> list[str]:
        """What the fake saw lately, for the message of a wait that timed out."""
        return []

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        """Bind an ephemeral port and serve; the port is known only after this returns."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        app = web.Application()
        self._add_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Wake held handlers, close connections and free the port."""
        if self._runner is None:
            return
        assert self._stopping is not None
        self._stopping.set()
        await self._closing()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @classmethod
    @contextlib.contextmanager
    def running_in_thread(cls, start_timeout: float = 10.0, **kwargs: Any) -> Iterator[Self]:
        """Serve from a background thread with its own loop, for tests whose bot is a subprocess."""
        fake = cls(**kwargs)
        thread = LoopThread(cls.thread_name)
        try:
            thread.call(fake.start(), start_timeout)
            yield fake
        finally:
            with contextlib.suppress(Exception):
                thread.call(fake.stop(), start_timeout)
            thread.stop(start_timeout)

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run one of the fake's coroutines from a thread other than the fake's (threaded mode)."""
        return asyncio.run_coroutine_threadsafe(coro, self._require_loop()).result(timeout)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ waiting

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._loop

    async def _on_own_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the fake's loop, even when the caller runs another loop (threaded mode)."""
        loop = self._loop
        if loop is None or asyncio.get_running_loop() is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def _bump(self) -> None:
        """Wake every waiter so it re-checks its condition; safe from any thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._set_changed()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._set_changed)

    def _set_changed(self) -> None:
        old, self._changed = self._changed, asyncio.Event()
        if old is not None:
            old.set()

    async def _wait_until(self, check: Callable[[], T | None], within: float, what: str) -> T:
        """`check()`'s first result that is neither None nor False, or TimeoutError after `within` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            with self._lock:
                result = check()
            if result is not None and result is not False:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                with self._lock:
                    seen = self._recent()
                raise TimeoutError(f"{type(self).__name__}: no {what} within {within}s (recent calls: {seen})")
            changed = self._changed
            assert changed is not None
            wait = remaining if self.poll_interval is None else min(remaining, self.poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)
