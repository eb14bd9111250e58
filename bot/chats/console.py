"""`signoff console` and the console half of `signoff demo`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from adapters.alertmanager import BadAlert, parse_alertmanager
from adapters.console.repl import CHANNEL, AlertSink, Console, ConsoleOutput, read_lines_interactively, run_script
from bot.bootstrap import App, bootstrap
from bot.settings import Settings
from core.domain.alerts import Alert


def attach_console(app: App, stream: TextIO | None = None, person: str = "alice") -> Console:
    """The console on a bootstrapped App: its output is the console's outbox gateway, delivering at once."""
    output = ConsoleOutput(stream)
    app.gateways.register(output, CHANNEL)
    return Console(app.chat, output, person=person, alerts=_alert_sink(app))


def _alert_sink(app: App) -> AlertSink:
    """The console's `alert` line as the Alertmanager webhook's payload: parsed as the webhook parses it,
    each refused alert told to the person, the others taken by the incident service."""

    async def take(payload: dict[str, Any], refused: Callable[[str], None]) -> None:
        parsed = parse_alertmanager(payload)
        for bad in (a for a in parsed if isinstance(a, BadAlert)):
            refused(bad.error)
        await app.incidents.ingest_alerts([a for a in parsed if isinstance(a, Alert)])

    return take


async def run_console(settings: Settings, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    if "cluster" not in settings.model_fields_set:
        settings = settings.model_copy(update={"cluster": "sandbox"})
    source = stdin or sys.stdin
    out = stdout or sys.stdout
    async with bootstrap(settings, min_update_interval=0.0) as app:
        console = attach_console(app, out)
        await app.maintenance.recover(sole_worker=app.db.sole_worker)
        if source.isatty():
            out.write("signoff console: type `help`; `as <person>` switches who you are; `quit` leaves.\n")
            async with app.background():
                await read_lines_interactively(console, out)
        else:
            await app.settle()
            await run_script(console, source.readlines(), app.settle, out)
    return 0
