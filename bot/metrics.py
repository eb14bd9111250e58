"""Prometheus text exposition, built from the database (shared truth across replicas) and
this process's counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.domain.approvals import RequestStatus

if TYPE_CHECKING:
    from bot.bootstrap import App


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inner}}} {value:g}"
    return f"{name} {value:g}"


async def render_metrics(app: App) -> str:
    counts, backlog, dead = await app.db.read(
        lambda uow: (uow.requests.counts(), uow.outbox.backlog(), uow.outbox.failures()))
    lines = [
        "# HELP signoff_requests Approval requests by state.",
        "# TYPE signoff_requests gauge",
    ]
    for status in RequestStatus:
        lines.append(_line("signoff_requests", counts.get(status.value, 0), {"state": status.value}))
    lines += [
        "# HELP signoff_outbox_backlog Chat messages waiting for delivery.",
        "# TYPE signoff_outbox_backlog gauge",
        _line("signoff_outbox_backlog", backlog),
        "# HELP signoff_outbox_dead Chat messages given up after permanent errors.",
        "# TYPE signoff_outbox_dead gauge",
        _line("signoff_outbox_dead", dead),
        "# HELP signoff_outbox_delivered_total Chat messages delivered by this process.",
        "# TYPE signoff_outbox_delivered_total counter",
        _line("signoff_outbox_delivered_total", app.dispatcher.delivered),
        "# HELP signoff_outbox_delivery_failures_total Failed delivery attempts by this process.",
        "# TYPE signoff_outbox_delivery_failures_total counter",
        _line("signoff_outbox_delivery_failures_total", app.dispatcher.failures),
    ]
    lines += app.metrics.render()
    return "\n".join(lines) + "\n"
