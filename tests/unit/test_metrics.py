from __future__ import annotations

from prometheus_client import Histogram
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import families, render_snapshot
from core.app.metrics import DURATION_BUCKETS, Metrics, MetricsSnapshot


class _Only:
    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self._snapshot = snapshot

    def collect(self):  # type: ignore[no-untyped-def]
        return families(self._snapshot)


def _render(metrics: Metrics) -> str:
    return render_snapshot(_Only(metrics.snapshot()))  # type: ignore[arg-type]


def test_counters_and_histograms_render_in_prometheus_text() -> None:
    metrics = Metrics()
    metrics.inc("signoff_executions_total", outcome="succeeded")
    metrics.inc("signoff_executions_total", outcome="succeeded")
    metrics.inc("signoff_chat_api_errors_total", platform='sl"ack')
    metrics.observe("signoff_execution_duration_seconds", 0.07, outcome="succeeded")
    metrics.observe("signoff_execution_duration_seconds", 3.0, outcome="succeeded")
    text = _render(metrics)
    assert 'signoff_executions_total{outcome="succeeded"} 2.0' in text
    assert 'signoff_chat_api_errors_total{platform="sl\\"ack"} 1.0' in text
    assert 'signoff_execution_duration_seconds_bucket{le="0.05",outcome="succeeded"} 0.0' in text
    assert 'signoff_execution_duration_seconds_bucket{le="0.075",outcome="succeeded"} 1.0' in text
    assert 'signoff_execution_duration_seconds_bucket{le="+Inf",outcome="succeeded"} 2.0' in text
    assert 'signoff_execution_duration_seconds_count{outcome="succeeded"} 2.0' in text
    assert "# TYPE signoff_execution_duration_seconds histogram" in text


def test_label_values_are_escaped_and_parse_back() -> None:
    metrics = Metrics()
    hostile = 'a"b\\c\nd} x{'
    metrics.inc("signoff_refusals_total", reason=hostile)
    text = _render(metrics)
    [family] = [f for f in text_string_to_metric_families(text) if f.name == "signoff_refusals"]
    [sample] = family.samples
    assert sample.labels == {"reason": hostile} and sample.value == 1.0


def test_duration_buckets_are_prometheus_client_defaults() -> None:
    assert (*DURATION_BUCKETS, float("inf")) == Histogram.DEFAULT_BUCKETS


def _exported_sample_names() -> set[str]:
    """Every sample name /metrics can carry, found by recording each core metric once and rendering."""
    from bot.metrics import _Scrape
    from core.app.metrics import GAUGE_HELP, HELP, QUORUM_BUCKETS
    metrics = Metrics()
    for name in HELP:
        if name.endswith("_seconds"):
            metrics.observe(name, 1.0, QUORUM_BUCKETS, outcome="succeeded")
        else:
            metrics.inc(name, reason="x")
    for name in GAUGE_HELP:
        metrics.set(name, 1.0)
    text = render_snapshot(_Scrape({}, 0, 0, 0, 0, metrics.snapshot(), audit_lag=0))  # as with SIGNOFF_AUDIT_WEBHOOK
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_every_metric_the_grafana_dashboard_queries_is_exported() -> None:
    import json
    import re
    from pathlib import Path

    from bot.metrics import EXPORTED

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queried = {name for expr in exprs for name in re.findall(r"\bsignoff_[a-z0-9_]+", expr)}
    assert queried, "the dashboard queries nothing"
    samples = _exported_sample_names()
    assert queried - samples == set(), "the dashboard queries metrics /metrics does not export"
    # EXPORTED (documented in docs/metrics.md) names exactly the families /metrics renders.
    families_seen = {re.sub(r"_(bucket|sum|count)$", "", s) if s not in EXPORTED else s for s in samples}
    assert families_seen == set(EXPORTED)
