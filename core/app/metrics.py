"""In-process counters and histograms, rendered in the Prometheus text format by bot/metrics.py.

Kept here (pure, no client library) so services can record what happened without knowing
who scrapes it. Each replica exposes its own; Prometheus sums them.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
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


HELP: dict[str, str] = {
    "signoff_time_to_quorum_seconds": "Seconds from request to quorum.",
    "signoff_execution_duration_seconds": "Seconds from claim to outcome, by outcome.",
    "signoff_executions_total": "Executions finished by this process, by outcome.",
    "signoff_chat_api_errors_total": "Failed chat API calls (delivery attempts), by platform.",
    "signoff_kubernetes_api_errors_total": "Kubernetes API calls that failed, by reason.",
    "signoff_refusals_total": "Refused actions, by reason.",
}


class Metrics:

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self.histograms: dict[str, dict[Labels, Histogram]] = defaultdict(dict)

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

    def render(self) -> list[str]:
        lines: list[str] = []
        with self._lock:
            for name, series in sorted(self.counters.items()):
                lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} counter"]
                lines += [f"{name}{_labels(key)} {value:g}" for key, value in sorted(series.items())]
            for name, histograms in sorted(self.histograms.items()):
                lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} histogram"]
                for key, histogram in sorted(histograms.items()):
                    cumulative = 0
                    for bound, count in zip((*histogram.buckets, float("inf")), histogram.counts, strict=True):
                        cumulative += count
                        le = "+Inf" if bound == float("inf") else f"{bound:g}"
                        lines.append(f"{name}_bucket{_labels((*key, ('le', le)))} {cumulative}")
                    lines.append(f"{name}_sum{_labels(key)} {histogram.total:g}")
                    lines.append(f"{name}_count{_labels(key)} {histogram.count}")
        return lines


def _labels(key: Labels) -> str:
    if not key:
        return ""
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in key)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
