"""Work that Slack has already been told about (acked) but that is not done yet.

Slack wants an answer within 3 s; a signature needs the database, a request needs the
cluster. So a listener acknowledges first and hands the work here. Nothing is
fire-and-forget: every job's task is kept until it ends, a failing job is logged and the
person is told (never silently dropped), and on shutdown `running()` waits for the jobs in
flight (up to `drain_s`, then cancels and awaits them) before the database closes.

Why not an asyncio.TaskGroup: its exit wraps any exception of the block it guards (a test
failure, the service's own SignoffError) into an ExceptionGroup, and these jobs never raise
anyway; a kept set of tasks with an explicit drain supervises them just as well.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

Work = Callable[[], Awaitable[None]]
# Told why a job did not finish: "crashed" (an exception, logged) or "interrupted" (shutdown).
OnError = Callable[[str], Awaitable[None]]


class Jobs:
    def __init__(self, *, concurrency: int = 32, drain_s: float = 10.0) -> None:
        self._concurrency = concurrency
        self.drain_s = drain_s
        self._accepting = False
        self._limit: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = 0
        self.failed = 0

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._limit = asyncio.Semaphore(self._concurrency)
        self._accepting = True
        try:
            yield
        finally:
            self._accepting = False  # late arrivals run inline (see `submit`)
            await self._drain()

    async def _drain(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self.drain_s)
        for task in pending:
            # A job is one transaction in the core, so it either committed (the card shows it) or not;
            # the person is told to check and try again (see `_guarded`).
            log.warning("slack.job_abandoned", job=task.get_name(), drain_s=self.drain_s)
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def submit(self, name: str, work: Work, on_error: OnError | None = None) -> None:
        """Start `work` under supervision and return at once; `on_error` tells the person it failed.

        Before `running()` (or after it ended) nothing would wait for a background task; the work
        then runs inline, so the answer to Slack is later but the work is still done.
        """
        job = self._guarded(name, work, on_error)
        if not self._accepting:
            await job
            return
        # Kept in `_tasks` until it ends and awaited by `running()` on the way out; `_guarded` handles
        # every Exception itself.
        task = asyncio.create_task(job, name=f"slack.{name}")
        self.started += 1
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until every job submitted so far (and any they submit) has finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _guarded(self, name: str, work: Work, on_error: OnError | None) -> None:
        limit = self._limit or asyncio.Semaphore(1)
        async with limit:
            try:
                await work()
            except asyncio.CancelledError:
                # Only `_drain` cancels a job (shutdown took too long): tell the person, briefly, to
                # check the card and try again, then let the cancellation go on.
                self.failed += 1
                await self._notify(name, on_error, "interrupted", timeout=2.0)
                raise
            except Exception:
                self.failed += 1
                log.exception("slack.job_failed", job=name)
                await self._notify(name, on_error, "crashed", timeout=None)

    @staticmethod
    async def _notify(name: str, on_error: OnError | None, reason: str, *, timeout: float | None) -> None:
        if on_error is None:
            return
        try:
            await asyncio.wait_for(on_error(reason), timeout)
        except Exception:
            log.exception("slack.job_failure_notice_failed", job=name)
