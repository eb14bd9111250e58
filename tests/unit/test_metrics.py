from __future__ import annotations

from core.app.metrics import Metrics


def test_counters_and_histograms_render_in_prometheus_text() -> None:
    metrics = Metrics()
    metrics.inc("signoff_executions_total", outcome="succeeded")
    metrics.inc("signoff_executions_total", outcome="succeeded")
    metrics.inc("signoff_chat_api_errors_total", platform='sl"ack')
    metrics.observe("signoff_execution_duration_seconds", 0.07, outcome="succeeded")
    metrics.observe("signoff_execution_duration_seconds", 3.0, outcome="succeeded")
    text = "\n".join(metrics.render())
    assert 'signoff_executions_total{outcome="succeeded"} 2' in text
    assert 'signoff_chat_api_errors_total{platform="sl\\"ack"} 1' in text
    assert 'signoff_execution_duration_seconds_bucket{outcome="succeeded",le="0.05"} 0' in text
    assert 'signoff_execution_duration_seconds_bucket{outcome="succeeded",le="0.1"} 1' in text
    assert 'signoff_execution_duration_seconds_bucket{outcome="succeeded",le="+Inf"} 2' in text
    assert 'signoff_execution_duration_seconds_count{outcome="succeeded"} 2' in text
    assert "# TYPE signoff_execution_duration_seconds histogram" in text
