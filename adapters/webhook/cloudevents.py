"""The audit sink as a webhook: each timeline event POSTed as a CloudEvents 1.0 structured JSON event.

`id` is the event's seq (receivers dedupe by it: delivery is at least once), `source` is `signoff`,
`type` is `dev.signoff.<event type>`, `time` the event's instant, and `data` the event with its hashes (the
body its hash covers, plus `hash`). Any answer but 2xx, or no answer within the timeout, is a failure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

log = structlog.get_logger(__name__)

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


def cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    at = datetime.strptime(str(event["at"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return {
        "specversion": "1.0", "id": str(event["seq"]), "source": "signoff",
        "type": f"dev.signoff.{event['type']}", "time": at.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        **({"subject": event["request_id"] or event["incident_id"]}
           if event.get("request_id") or event.get("incident_id") else {}),
        "data": event,
    }


class WebhookUnavailable(Exception):
    pass


class CloudEventsWebhook:
    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 10.0) -> None:
        self._url = url
        self._headers = {"Content-Type": CONTENT_TYPE}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, event: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self._url, json=cloud_event(event), headers=self._headers) as answer:
                if not 200 <= answer.status < 300:
                    raise WebhookUnavailable(f"the audit webhook answered {answer.status}")
        except aiohttp.ClientError as exc:
            raise WebhookUnavailable(f"the audit webhook did not answer ({type(exc).__name__})") from None
        except TimeoutError:
            raise WebhookUnavailable("the audit webhook did not answer in time") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
