"""A loopback fake of an OpenAI-compatible chat-completions server, for the LLM advisor's tests.

Why: the advisor must be tested over real HTTP (docs/design.md §5), including the ways a real endpoint
fails: slow answers, 5xx, bodies that are not JSON. The fake records every request so tests can
check the model, the bearer key and what the prompt carried.

    async with FakeOpenAI() as fake:
        fake.reply('{"action": "rollout restart deployment/api -n prod", "rationale": "..."}')
        advisor = OpenAIAdvisor(fake.url, "test-model", "sk-test")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeOpenAI", "RecordedRequest", "completion"]


def completion(content: Any, model: str = "fake-model") -> dict[str, Any]:
    """A chat.completion object with one choice carrying `content`."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAI:
    """Answers `POST /v1/chat/completions` (and `/chat/completions`) as scripted by the test."""

    content: Any = '{"action": "NONE"}'
    status: int = 200
    raw_body: str | None = None  # sent verbatim instead of a completion (for malformed bodies)
    delay: float = 0.0
    requests: list[RecordedRequest] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        """The base URL, as a user would configure it (`SIGNOFF_LLM_URL`)."""
        return f"http://127.0.0.1:{self._port}/v1"

    def reply(self, content: Any) -> None:
        self.content, self.status, self.raw_body, self.delay = content, 200, None, 0.0

    def fail(self, status: int, body: str = '{"error": {"message": "boom", "type": "server_error"}}') -> None:
        self.status, self.raw_body = status, body

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_post("/chat/completions", self._completions)
        # A short shutdown timeout: a handler still sleeping for the timeout test must not hold up teardown.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _completions(self, request: web.Request) -> web.Response:
        raw = await request.text()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"_unparsable": raw}
        self.requests.append(RecordedRequest(path=request.path, headers=dict(request.headers), body=body))
        if self.delay:
            # Wait for the delay, or for stop(), whichever comes first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), timeout=self.delay)
        if self.raw_body is not None:
            return web.Response(status=self.status, text=self.raw_body, content_type="application/json")
        return web.json_response(completion(self.content, model=str(body.get("model", ""))), status=self.status)
