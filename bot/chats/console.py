"""`signoff console` and the console half of `signoff demo`."""

from __future__ import annotations

import sys
from typing import TextIO

from adapters.console.repl import CHANNEL, Console, ConsoleOutput, read_lines_interactively, run_script
from bot.bootstrap import App, bootstrap
from bot.settings import Settings


def attach_console(app: App, stream: TextIO | None = None, person: str = "alice") -> Console:
    """The console on a bootstrapped App: its output is the console's outbox gateway, delivering at once."""
    output = ConsoleOutput(stream)
    app.gateways.register(output, CHANNEL)
    return Console(app.chat, output, person=person, alerts=app.alerts.ingest_alerts)


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
