"""`signoff console` and the console half of `signoff demo`."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from adapters.alertmanager import BadAlert, parse_alertmanager
from adapters.console.repl import CHANNEL, AlertSink, Console, ConsoleOutput, read_lines_interactively, run_script
from bot.bootstrap import App, bootstrap
from bot.settings import Settings
from core.domain.alerts import Alert
from core.domain.listing import RequestQuery
from core.domain.operations import Operation

if TYPE_CHECKING:
    from adapters.console.prompt import AbovePrompt, Known


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
        await app.alerts.ingest_alerts([a for a in parsed if isinstance(a, Alert)])

    return take


def history_path() -> Path:
    """Where the console keeps what people typed: $XDG_STATE_HOME/signoff/console_history."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "signoff" / "console_history"


def completion_refresher(app: App) -> Callable[[Known], Awaitable[None]]:
    async def refresh(known: Known) -> None:
        recent = await app.history.requests(RequestQuery(limit=50))
        known.request_ids = [request.id for request in recent.items]
        targets = dict.fromkeys(_target_text(request.operation) for request in recent.items)
        known.targets = [target for target in targets if target]
        known.people = sorted(app.policy.people)
    return refresh


def _target_text(operation: Operation) -> str:
    if operation.kind in ("delete", "cordon", "uncordon", "drain"):
        return f"{operation.name}{operation.where}"
    return f"{operation.target_ref}{operation.where}"


async def run_console(settings: Settings, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    if "cluster" not in settings.model_fields_set:
        settings = settings.model_copy(update={"cluster": "sandbox"})
    source = stdin or sys.stdin
    interactive = source.isatty() and stdout is None
    out = stdout or sys.stdout
    above: AbovePrompt | None = None
    if interactive:
        from adapters.console.prompt import AbovePrompt

        above = AbovePrompt(out)  # what arrives while the prompt waits goes above it
    async with bootstrap(settings, min_update_interval=0.0) as app:
        console = attach_console(app, cast(TextIO, above) if above is not None else out)
        await app.maintenance.recover(sole_worker=app.db.sole_worker)
        if above is not None:
            from adapters.console.prompt import read_lines_with_prompt

            out.write("signoff console: type `help` (Tab completes); `as <person>` switches who you are; "
                      "`quit` leaves.\n")
            async with app.background():
                await read_lines_with_prompt(console, history=history_path(), refresh=completion_refresher(app),
                                             output=above)
        elif source.isatty():
            async with app.background():
                await read_lines_interactively(console, out)
        else:
            await app.settle()
            await run_script(console, source.readlines(), app.settle, out)
    return 0
