"""Alertmanager's webhook payload (version 4) turned into the core's alerts.

Validated enough to be stored safely. A body that is not a webhook payload is refused whole, with a
sentence saying what is wrong; inside a good payload, one bad alert is reported as that alert's error
and never costs the others (Alertmanager would otherwise retry the whole group forever).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from core.domain.alerts import Alert, AlertStatus
from core.domain.incidents import clean_labels
from core.domain.text import clean_text
from core.errors import ParseError

MAX_ALERTS = 20_000  # a 4 MiB body holds about 8,000 real alerts; Alertmanager never resends a refused group
MAX_KEY = 128


def _alert_key(alert: Mapping[str, Any]) -> str:
    """Alertmanager re-sends a firing alert with the same fingerprint and startsAt; a re-fire has a new startsAt."""
    fingerprint = str(alert.get("fingerprint") or "")
    if not fingerprint:
        canonical = json.dumps(alert.get("labels", {}), sort_keys=True)
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return f"{fingerprint}@{alert.get('startsAt', '')}"[:MAX_KEY]


class BadAlert(NamedTuple):
    """An alert of a good payload that cannot be taken, and why."""

    fingerprint: str
    error: str


def parse_alertmanager(payload: object) -> list[Alert | BadAlert]:
    """The alerts of a version-4 webhook payload, in order; each one an `Alert` or a `BadAlert`."""
    if not isinstance(payload, dict):
        raise ParseError("The body must be an Alertmanager webhook payload (a JSON object with `alerts`).")
    if str(payload.get("version", "4")) != "4":
        raise ParseError(f"Alertmanager payload version {payload.get('version')} is not supported; send version 4.")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise ParseError("The payload has no `alerts` list.")
    if len(alerts) > MAX_ALERTS:
        raise ParseError(f"The payload carries {len(alerts)} alerts; at most {MAX_ALERTS} per notification.")
    return [_alert_or_error(alert) for alert in alerts]


def _alert_or_error(alert: object) -> Alert | BadAlert:
    fingerprint = clean_text(str(alert.get("fingerprint") or ""))[:MAX_KEY] if isinstance(alert, dict) else ""
    try:
        return _alert(alert)
    except ParseError as exc:
        return BadAlert(fingerprint=fingerprint, error=exc.message)


def _alert(alert: object) -> Alert:
    if not isinstance(alert, dict):
        raise ParseError("An alert must be a JSON object with `labels`; this one was skipped.")
    if not isinstance(alert.get("labels"), dict):
        raise ParseError("An alert needs a `labels` object; this one was skipped.")
    labels = clean_labels(alert["labels"])
    if not labels.get("alertname"):
        raise ParseError("An alert needs an `alertname` label; this one was skipped.")
    annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
    return Alert(
        status=AlertStatus.resolved if alert.get("status") == "resolved" else AlertStatus.firing,
        labels=labels,
        annotations=clean_labels(annotations or {}),
        key=clean_text(_alert_key(alert)),
        fingerprint=clean_text(str(alert.get("fingerprint") or ""))[:MAX_KEY],
    )
