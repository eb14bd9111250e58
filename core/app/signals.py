"""Wake-ups between services in one process; the database stays the source of truth."""

from __future__ import annotations

import asyncio
import contextlib


class Wakeup:
    """A level-triggered nudge: background loops also poll, so a lost nudge only delays work."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True when nudged, False when `timeout` passed first."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives
        # as the event fires, and the worker loop then never ends (a shutdown that hangs).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()
        nudged = self._event.is_set()
        self._event.clear()
        return nudged


class Signals:
    def __init__(self) -> None:
        self.execution = Wakeup()
        self.outbox = Wakeup()
