"""Failure injection on the fake Discord's REST API: errors, rate limits, timeouts, delays, random faults
(a part of FakeDiscord). Faults apply to REST only, never to the gateway."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from testkit.fakes.discord.records import _STATUS_TEXT, DiscordCall, FaultKind, _json_response
from testkit.support.loopback import Fault, full_path


class Faults:
    """FakeDiscord's part that injects failures into its REST answers."""

    # ------------------------------------------------------------------ failure injection

    def fail(
        self, method: str, path_regex: str, status: int = 500, times: int | None = 1, *, commit: bool = False
    ) -> None:
        """Answer matching calls with ``status`` (Discord's error JSON). ``commit=True`` applies the
        request first, so the change lands although the client sees a failure."""
        self.faults.add(Fault(method.upper(), full_path(path_regex), "status", times, status=status, commit=commit))

    def rate_limit(
        self,
        method: str,
        path_regex: str,
        retry_after: float = 0.5,
        times: int | None = 1,
        global_: bool = False,
    ) -> None:
        """Answer matching calls with Discord's 429 (body, ``Retry-After``, ``X-RateLimit-*``, ``Via``)."""
        self.faults.add(Fault(method.upper(), full_path(path_regex), "429", times, status=429,
                              retry_after=retry_after, global_=global_))

    def timeout(
        self, method: str, path_regex: str, seconds: float | None = None, times: int | None = 1
    ) -> None:
        """Hold matching calls ``seconds`` (default ``hang_seconds``), then answer 504 like Cloudflare."""
        hold = self.hang_seconds if seconds is None else seconds
        self.faults.add(Fault(method.upper(), full_path(path_regex), "timeout", times, status=504, seconds=hold))

    def delay(
        self, method: str, path_regex: str, seconds: float, times: int | None = None, *, commit: bool = False
    ) -> None:
        """Hold matching calls ``seconds`` before handling them normally. ``commit=True`` applies the request
        first and holds only the answer: the change is visible (and dispatched) before the client hears of it."""
        self.faults.add(Fault(method.upper(), full_path(path_regex), "delay", times, seconds=seconds, commit=commit))

    def fail_randomly(
        self,
        fraction: float,
        seed: int = 0,
        kinds: Sequence[FaultKind] = ("500", "429", "timeout"),
        *,
        path_regex: str = r".*",
        retry_after: float = 0.2,
        hang_seconds: float | None = None,
    ) -> None:
        """Fail ``fraction`` of the matching calls, choosing among ``kinds`` with a seeded RNG."""
        pattern = full_path(path_regex)
        hang = self.hang_seconds if hang_seconds is None else hang_seconds
        outcomes = {
            "429": Fault("*", pattern, "429", 1, status=429, retry_after=retry_after),
            "timeout": Fault("*", pattern, "timeout", 1, status=504, seconds=hang),
            "500": Fault("*", pattern, "status", 1, status=500),
        }
        self.faults.randomly(fraction, seed, [outcomes[kind] for kind in kinds],
                             lambda method, path: pattern.search(path) is not None)

    def clear_faults(self) -> None:
        self.faults.clear()

    # ------------------------------------------------------------------ internals: faults

    async def _answer_fault(self, call: DiscordCall, fault: Fault, bucket: str) -> web.Response:
        call.failed = True
        status = fault.status or 500
        call.status = status
        if fault.kind == "429":
            call.fault = "429"
            retry = fault.retry_after
            scope = "global" if fault.global_ else "user"
            body: Any = {
                "message": "You are being rate limited.",
                "retry_after": retry,
                "global": fault.global_,
            }
            if fault.global_:
                body["code"] = 0
            headers = {
                "Retry-After": str(max(1, math.ceil(retry))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
                "X-RateLimit-Reset-After": f"{retry:.3f}",
                "X-RateLimit-Bucket": bucket,
                "X-RateLimit-Scope": scope,
                "Via": "1.1 google",
            }
            if fault.global_:
                headers["X-RateLimit-Global"] = "true"
            call.response = body
            self._record(call)
            return _json_response(429, body, headers)
        if fault.kind == "timeout":
            call.fault = "timeout"
            self._record(call)
            await self._sleep(fault.seconds)
            return web.Response(
                status=504,
                text="<html><body><h1>504 Gateway Time-out</h1></body></html>",
                content_type="text/html",
            )
        call.fault = str(status)
        body = {"message": f"{status}: {_STATUS_TEXT.get(status, 'Error')}", "code": 0}
        call.response = body
        self._record(call)
        return _json_response(status, body, {"Via": "1.1 google"})
