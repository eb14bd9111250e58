"""In-process counters and histograms: what the services record, exported by bot/metrics.py.

Kept here (pure, no client library) so services can record what happened without knowing
who scrapes it; bot/metrics.py maps a snapshot onto prometheus-client at scrape time. Each
replica exposes its own; Prometheus sums them.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from dataclasses import dataclass, field

# prometheus-client's default buckets (Histogram.DEFAULT_BUCKETS without +Inf), repeated here so
# the core needs no client library; tests/unit/test_metrics.py keeps the two equal.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# Time to quorum is people's time (minutes), far beyond the default buckets' 10 s.
QUORUM_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

Labels = tuple[tuple[str, str], ...]


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1


@dataclass(frozen=True)
class HistogramSnapshot:
    buckets: tuple[float, ...]
    counts: tuple[int, ...]  # per bucket, the last one for +Inf; not cumulative
    total: float
    count: int


@dataclass(frozen=True)
class MetricsSnapshot:
    counters: dict[str, dict[Labels, float]]
    histograms: dict[str, dict[Labels, HistogramSnapshot]]
    gauges: dict[str, dict[Labels, float]] = field(default_factory=dict)


HELP: dict[str, str] = {
    "signoff_time_to_quorum_seconds": "Seconds from request to quorum.",
    "signoff_execution_duration_seconds": "Seconds from claim to outcome, by outcome.",
    "signoff_executions_total": "Executions finished by this process, by outcome.",
    "signoff_chat_api_errors_total": "Failed chat API calls (delivery attempts), by platform.",
    "signoff_kubernetes_api_errors_total": "Kubernetes API calls that failed, by reason.",
    "signoff_refusals_total": "Refused actions, by reason.",
    "signoff_alert_webhooks_refused_total": "Alertmanager notifications refused (4xx, never resent), by error code.",
    "signoff_cards_held_back_total": "New cards over a channel's budget, listed in a digest instead, by platform.",
    "signoff_audit_events_sent_total": "Timeline events the audit webhook acknowledged (SIGNOFF_AUDIT_WEBHOOK).",
    "signoff_audit_stream_failures_total": "Failed attempts to send to the audit webhook.",
    "signoff_calendar_refreshes_total": "iCalendar feed refreshes ([oncall.*], ical freezes), by feed and outcome: "
                                        "ok, kept_copy (failed; the last good copy still answers) or no_copy.",
    "signoff_silences_total": "Alertmanager silences made (step=create) and ended (step=expire) around operations.",
    "signoff_silence_failures_total": "Alertmanager silences that could not be made or ended (the operation ran "
                                      "anyway), by step.",
}

# Gauges: set, not counted (`Metrics.set`).
GAUGE_HELP: dict[str, str] = {
    "signoff_policy_reload_success": "1 when the last policy reload succeeded, 0 when the file was refused.",
    "signoff_policy_reload_last_success_timestamp_seconds": "When the policy was last loaded successfully.",
}


class Metrics:

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self.histograms: dict[str, dict[Labels, Histogram]] = defaultdict(dict)
        self.gauges: dict[str, dict[Labels, float]] = defaultdict(dict)

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self.gauges[name][tuple(sorted(labels.items()))] = value

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self.counters[name][tuple(sorted(labels.items()))] += amount

    def observe(self, name: str, value: float, buckets: tuple[float, ...] = DURATION_BUCKETS, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            histogram = self.histograms[name].get(key)
            if histogram is None:
                histogram = self.histograms[name][key] = Histogram(buckets)
            histogram.observe(value)

    def snapshot(self) -> MetricsSnapshot:
        """A consistent copy, taken under the lock, for an exporter to render."""
        with self._lock:
            return MetricsSnapshot(
                counters={name: dict(series) for name, series in self.counters.items()},
                gauges={name: dict(series) for name, series in self.gauges.items()},
                histograms={
                    name: {key: HistogramSnapshot(h.buckets, tuple(h.counts), h.total, h.count)
                           for key, h in series.items()}
                    for name, series in self.histograms.items()
                },
            )
