"""The LLM track's adapter: one OpenAI-compatible chat-completions call per incident.

The advisor is optional and untrusted. It asks for one action in the allow-list's grammar and
returns what the model said, trimmed; the core's decision manager runs `parse_operation` on it and
drops anything that does not parse. Every failure (timeout, connection refused, an HTTP error,
an answer it cannot read, NONE) is logged as `llm.failed` and becomes None, so a broken or slow
model only means the decision manager falls through to the expert rules.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import structlog

from core.domain.advice import AdvisorAnswer
from core.domain.incidents import Incident

__all__ = ["DEFAULT_MODEL", "OpenAIAdvisor", "parse_answer"]

log = structlog.get_logger(__name__)

DEFAULT_MODEL = "gpt-4o-mini"
_MAX_RATIONALE = 500
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n?(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)

_INSTRUCTIONS = (
    "You are the on-call assistant of signoff, a bot that runs Kubernetes operations only after "
    "people approve them. Given a firing alert, propose the single operation most likely to fix it.\n"
    "Reply with JSON only, no prose and no code fence: "
    '{"action": "<one action line>", "rationale": "<one sentence for the people who will approve it>"} '
    'or {"action": "NONE"} when no allowed operation would help.\n'
)


class OpenAIAdvisor:
    """Proposes an action for an incident through an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(self, url: str, model: str | None, api_key: str | None, *, timeout: float = 10.0) -> None:
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else f"{base}/chat/completions"
        self.model = model or DEFAULT_MODEL
        self._api_key = api_key
        self.timeout = timeout
        # Created on first use: an aiohttp session must be made inside the running event loop.
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and tracebacks.
        return f"OpenAIAdvisor(endpoint={self.endpoint!r}, model={self.model!r})"

    def request_body(self, incident: Incident, grammar: str) -> dict[str, Any]:
        alert = {
            "alert": incident.alert_name or incident.title,
            "title": incident.title,
            "labels": dict(incident.labels),
            "symptom": incident.symptom,
        }
        return {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": _INSTRUCTIONS + grammar},
                {"role": "user", "content": "The alert, as JSON:\n" + json.dumps(alert, indent=1, sort_keys=True)},
            ],
        }

    async def propose(self, incident: Incident, grammar: str) -> AdvisorAnswer | None:
        """The model's proposal, or None on any failure; never raises (except cancellation)."""
        try:
            content = await self._complete(self.request_body(incident, grammar))
        except TimeoutError:
            _failed("timeout", incident, timeout=self.timeout)
            return None
        except _HttpStatus as exc:
            _failed("http_status", incident, status=exc.status)
            return None
        except aiohttp.ClientError as exc:
            _failed("connection", incident, error=type(exc).__name__)
            return None
        except _BadResponse as exc:
            _failed("bad_response", incident, detail=str(exc))
            return None
        except Exception as exc:  # the advisor is optional: whatever goes wrong, fall through to the rules
            _failed("unexpected", incident, error=type(exc).__name__)
            return None
        answer = parse_answer(content)
        if answer is None:
            _failed("unparsable", incident, content=content[:200])
            return None
        if answer.action.upper() == "NONE":
            log.info("llm.no_proposal", incident_id=incident.id)
            return None
        log.info("llm.proposed", incident_id=incident.id, action=answer.action)
        return answer

    async def _complete(self, body: dict[str, Any]) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        session = self._ensure_session()
        # asyncio.timeout bounds the whole exchange (connect, headers, body), whatever aiohttp does.
        async with asyncio.timeout(self.timeout):
            async with session.post(self.endpoint, json=body, headers=headers) as response:
                if not 200 <= response.status < 300:
                    raise _HttpStatus(response.status)
                text = await response.text()
        return _content(text)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _HttpStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _BadResponse(Exception):
    """A 2xx response that is not a chat completion we can read."""


def _content(text: str) -> str:
    try:
        data = json.loads(text)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _BadResponse(f"not a chat completion ({type(exc).__name__})") from exc
    if isinstance(content, list):
        # Some compatible servers return content parts: [{"type": "text", "text": "..."}].
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise _BadResponse("message content is not text")
    return content


def parse_answer(content: str) -> AdvisorAnswer | None:
    """Read the model's reply: JSON `{"action", "rationale"}` (in a code fence or not) or one bare line.

    Returns an answer whose action may be "NONE"; None when the reply cannot be read at all.
    No allow-list check here: that is the core's job, and only the core's.
    """
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced["body"].strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        action = data.get("action")
        rationale = data.get("rationale", "")
        if not isinstance(action, str) or not _trim(action):
            return None
        if not isinstance(rationale, str):
            rationale = ""
        return AdvisorAnswer(action=_trim(action), rationale=rationale.strip()[:_MAX_RATIONALE])
    lines = [line for line in text.splitlines() if line.strip()]
    # One bare line is an answer; several lines of prose are not (we will not guess which line counts).
    if len(lines) != 1 or lines[0].lstrip().startswith("["):
        return None
    return AdvisorAnswer(action=_trim(lines[0]), rationale="")


def _trim(action: str) -> str:
    return action.strip().strip("`").strip()


def _failed(reason: str, incident: Incident, **detail: Any) -> None:
    log.warning("llm.failed", reason=reason, incident_id=incident.id, **detail)
