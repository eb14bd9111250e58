"""Failure injection on the fake Slack's Web API: errors, rate limits, timeouts, delays, random faults (a
part of FakeSlack)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from testkit.fakes.slack.records import _HTTP_ERROR_NAMES, FaultKind, JSONDict, SlackCall
from testkit.support.loopback import Fault


class Faults:
    """FakeSlack's part that injects failures into its Web API answers."""

    # ------------------------------------------------------------------ fault injection

    def fail(
        self,
        method: str,
        status: int = 500,
        times: int = 1,
        *,
        error: str | None = None,
        commit: bool = False,
    ) -> None:
        """Answer the next ``times`` calls with ``status`` (or, with status 200, ``ok: false, error``).

        ``commit=True`` applies the call before answering with the failure: Slack's ambiguous case
        where the write landed but the client saw an error. ``method`` may be ``"*"``.
        """
        name = error or (_HTTP_ERROR_NAMES.get(status, f"http_{status}") if status != 200 else "fatal_error")
        self.faults.add(Fault(method, None, "status", times, status=status, error=name, commit=commit))

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer 429 + ``Retry-After`` (slack_sdk sleeps ``retry_after`` + up to 1 s before retrying)."""
        self.faults.add(Fault(method, None, "429", times, status=429, error="ratelimited", retry_after=retry_after))

    def timeout(self, method: str, seconds: float | None = None, times: int = 1) -> None:
        """Hold the next ``times`` calls for ``seconds`` (default ``hang_seconds``) without applying them."""
        hang = self.hang_seconds if seconds is None else seconds
        self.faults.add(Fault(method, None, "timeout", times, status=504, error="request_timeout", seconds=hang))

    def delay(self, method: str, seconds: float) -> None:
        """Slow every call to ``method`` (or ``"*"``) by ``seconds`` until ``clear_faults()``."""
        self.faults.add(Fault(method, None, "delay", None, seconds=seconds))

    def fail_randomly(
        self,
        fraction: float = 0.3,
        seed: int | None = None,
        kinds: Sequence[FaultKind] = ("500", "429", "timeout"),
        methods: Sequence[str] | None = None,
        *,
        hang_seconds: float | None = None,
        retry_after: int = 1,
    ) -> None:
        """Fail about ``fraction`` of calls (reproducibly with ``seed``) with one of ``kinds``."""
        hang = self.hang_seconds if hang_seconds is None else hang_seconds
        outcomes = {
            "429": Fault("*", None, "429", 1, status=429, error="ratelimited", retry_after=retry_after),
            "timeout": Fault("*", None, "timeout", 1, status=504, error="request_timeout", seconds=hang),
            "500": Fault("*", None, "status", 1, status=500, error="internal_error"),
        }
        only = frozenset(methods) if methods is not None else None
        self.faults.randomly(fraction, seed, [outcomes[kind] for kind in kinds],
                             lambda method, path: only is None or method in only)

    def clear_faults(self) -> None:
        self.faults.clear()

    # ------------------------------------------------------------------ internals: faults

    async def _answer_fault(self, call: SlackCall, fault: Fault) -> web.Response:
        body: JSONDict = {"ok": False, "error": fault.error}
        call.status, call.failed, call.error, call.response = fault.status or 500, True, fault.error, body
        if fault.kind == "status":
            call.fault = str(fault.status) if fault.status != 200 else "error"
        else:
            call.fault = fault.kind
        self._record(call)
        if fault.kind == "timeout":
            await self._sleep(fault.seconds)
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.kind == "429" else None
        return web.json_response(body, status=fault.status or 500, headers=headers)
