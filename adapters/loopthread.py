"""An asyncio event loop on its own daemon thread.

The sandbox API server runs on one so that it keeps answering while the caller's thread blocks
in the synchronous Kubernetes client; the test fakes and the benches use the same class.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from threading import Thread
from typing import Any, TypeVar

_T = TypeVar("_T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run `coro` on the thread's loop and wait for it from a thread that runs no loop of its own."""
        return self.submit(coro).result(timeout)

    async def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run `coro` on the thread's loop, awaited from another loop."""
        return await asyncio.wrap_future(self.submit(coro))

    def stop(self, timeout: float = 10.0) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:  # torn down on its own thread: the caller may be running another loop
            pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
