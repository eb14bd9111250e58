"""Alertmanager's API v2 silences over aiohttp: `POST /api/v2/silences`, `DELETE /api/v2/silence/{id}`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import aiohttp

from core.domain.silences import Matcher
from core.ports import SilenceFailed

CREATED_BY = "signoff"


def _when(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class AlertmanagerSilencer:
    """One Alertmanager (`SIGNOFF_ALERTMANAGER_URL`); a failure is a `SilenceFailed` with one short reason."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self._url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def create(self, matchers: Sequence[Matcher], *, starts_at: datetime, ends_at: datetime,
                     comment: str) -> str:
        body = {
            "matchers": [{"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": True}
                         for m in matchers],
            "startsAt": _when(starts_at), "endsAt": _when(ends_at), "createdBy": CREATED_BY, "comment": comment,
        }
        answer = await self._call("POST", "/api/v2/silences", body)
        silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not isinstance(silence_id, str) or not silence_id:
            raise SilenceFailed("Alertmanager answered without a silenceID")
        return silence_id

    async def expire(self, silence_id: str) -> None:
        await self._call("DELETE", f"/api/v2/silence/{silence_id}", None, missing_ok=True)

    async def _call(self, method: str, path: str, body: object, *, missing_ok: bool = False) -> object:
        try:
            async with self._client().request(method, self._url + path, json=body) as response:
                if response.status == 404 and missing_ok:
                    return None
                if response.status >= 300:
                    text = (await response.text())[:200].strip()
                    raise SilenceFailed(f"Alertmanager answered {response.status}: {text or response.reason}")
                if response.content_type == "application/json":
                    return await response.json()
                return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SilenceFailed(f"Alertmanager at {self._url} is unreachable ({type(exc).__name__})") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
