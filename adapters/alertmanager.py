"""Alertmanager's webhook payload (version 4) turned into the core's alerts.

Validated enough to be stored safely: a payload that is not one is refused with a sentence
saying what is wrong, before anything reaches the incident service.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from core.domain.alerts import Alert, AlertStatus
from core.domain.incidents import clean_labels
from core.errors import ParseError

MAX_ALERTS = 1000
MAX_KEY = 128


def _alert_key(alert: Mapping[str, Any]) -> str:
    """Alertmanager re-sends a firing alert with the same fingerprint and startsAt; a re-fire has a new startsAt."""
    fingerprint = str(alert.get("fingerprint") or "")
    if not fingerprint:
        canonical = json.dumps(alert.get("labels", {}), sort_keys=True)
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return f"{fingerprint}@{alert.get('startsAt', '')}"[:MAX_KEY]


def parse_alertmanager(payload: object) -> list[Alert]:
    """The alerts of a version-4 webhook payload."""
    if not isinstance(payload, dict):
        raise ParseError("The body must be an Alertmanager webhook payload (a JSON object with `alerts`).")
    if str(payload.get("version", "4")) != "4":
        raise ParseError(f"Alertmanager payload version {payload.get('version')} is not supported; send version 4.")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise ParseError("The payload has no `alerts` list.")
    if len(alerts) > MAX_ALERTS:
        raise ParseError(f"The payload carries {len(alerts)} alerts; at most {MAX_ALERTS} per notification.")
    return [_alert(alert) for alert in alerts]


def _alert(alert: object) -> Alert:
    if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
        raise ParseError("Every alert needs a `labels` object.")
    labels = clean_labels(alert["labels"])
    if not labels.get("alertname"):
        raise ParseError("Every alert needs an `alertname` label.")
    annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
    return Alert(
        status=AlertStatus.resolved if alert.get("status") == "resolved" else AlertStatus.firing,
        labels=labels,
        annotations=clean_labels(annotations or {}),
        key=_alert_key(alert),
        fingerprint=str(alert.get("fingerprint") or ""),
    )
