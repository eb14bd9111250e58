"""/metrics through prometheus-client: the database's shared truth (request states, outbox) and this
process's recordings (core.app.metrics), rendered by the standard exposition code (escaping, types).

The core records into its own pure `Metrics`; this adapter maps a snapshot of it onto metric
families at scrape time, so the core never imports a client library.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from core.app.metrics import GAUGE_HELP, HELP, MetricsSnapshot
from core.domain.approvals import RequestStatus

if TYPE_CHECKING:
    from bot.bootstrap import App

# Every metric family /metrics can export (some appear only after their first recording).
# deploy/grafana-dashboard.json may query only these (tests/unit/test_metrics.py).
EXPORTED = (
    "signoff_requests",
    "signoff_outbox_backlog",
    "signoff_outbox_dead",
    "signoff_outbox_delivered_total",
    "signoff_outbox_delivery_failures_total",
    "signoff_audit_stream_lag_events",
    *sorted(HELP),
    *sorted(GAUGE_HELP),
)


class _Scrape(Collector):
    """One scrape's values, gathered beforehand (the database read is async; collect() is not)."""

    def __init__(self, counts: dict[str, int], backlog: int, dead: int, delivered: float, failures: float,
                 recorded: MetricsSnapshot, audit_lag: int | None = None) -> None:
        self._audit_lag = audit_lag
        self._counts = counts
        self._backlog = backlog
        self._dead = dead
        self._delivered = delivered
        self._failures = failures
        self._recorded = recorded

    def collect(self) -> Iterator[Metric]:
        requests = GaugeMetricFamily("signoff_requests", "Approval requests by state.", labels=["state"])
        for status in RequestStatus:
            requests.add_metric([status.value], self._counts.get(status.value, 0))
        yield requests
        yield GaugeMetricFamily("signoff_outbox_backlog", "Chat messages waiting for delivery.", value=self._backlog)
        yield GaugeMetricFamily("signoff_outbox_dead", "Chat messages given up after permanent errors.",
                                value=self._dead)
        yield CounterMetricFamily("signoff_outbox_delivered_total", "Chat messages delivered by this process.",
                                  value=self._delivered)
        yield CounterMetricFamily("signoff_outbox_delivery_failures_total",
                                  "Failed delivery attempts by this process.", value=self._failures)
        if self._audit_lag is not None:
            yield GaugeMetricFamily("signoff_audit_stream_lag_events",
                                    "Timeline events not yet acknowledged by the audit webhook.", value=self._audit_lag)
        yield from families(self._recorded)


def families(snapshot: MetricsSnapshot) -> Iterator[Metric]:
    """The core's counters and histograms as prometheus-client metric families."""
    for name, series in sorted(snapshot.counters.items()):
        label_names = _label_names(series)
        counter = CounterMetricFamily(name, HELP.get(name, name), labels=label_names)
        for key, value in sorted(series.items()):
            counter.add_metric(_values(key, label_names), value)
        yield counter
    for name, values in sorted(snapshot.gauges.items()):
        label_names = _label_names(values)
        gauge = GaugeMetricFamily(name, GAUGE_HELP.get(name, name), labels=label_names)
        for key, value in sorted(values.items()):
            gauge.add_metric(_values(key, label_names), value)
        yield gauge
    for name, histograms in sorted(snapshot.histograms.items()):
        label_names = _label_names(histograms)
        family = HistogramMetricFamily(name, HELP.get(name, name), labels=label_names)
        for key, histogram in sorted(histograms.items()):
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip((*histogram.buckets, float("inf")), histogram.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
            family.add_metric(_values(key, label_names), buckets, sum_value=histogram.total)
        yield family


def _label_names(series: Iterable[tuple[tuple[str, str], ...]]) -> list[str]:
    return sorted({name for key in series for name, _ in key})


def _values(key: tuple[tuple[str, str], ...], label_names: list[str]) -> list[str]:
    given = dict(key)
    return [given.get(name, "") for name in label_names]


def render_snapshot(collector: Collector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


async def render_metrics(app: App) -> str:
    counts, backlog, dead = await app.db.read(
        lambda uow: (uow.requests.counts(), uow.outbox.backlog(), uow.outbox.failures()))
    lag = await app.audit_stream.lag() if app.audit_stream is not None else None
    return render_snapshot(_Scrape(counts, backlog, dead, app.dispatcher.delivered, app.dispatcher.failures,
                                   app.metrics.snapshot(), lag))
