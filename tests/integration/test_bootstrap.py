"""The composition root: its wiring is explicit, and it takes everything down even when a part fails."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from adapters.console.repl import ConsoleOutput
from bot.bootstrap import bootstrap
from core.app.messagebus import RequestCreated, RequestFinished
from core.domain.policy import Policy
from testkit.support import make_settings


def settings(database_url: str) -> Any:
    return make_settings(database_url)


async def test_every_closer_runs_even_when_one_fails(sqlite_database_url: str) -> None:
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("cannot close")

    async def broken_async() -> None:
        ran.append("broken_async")
        raise OSError("connection reset")

    with capture_logs() as logs:
        async with bootstrap(settings(sqlite_database_url), cluster=object(), check_cluster=False,  # type: ignore[arg-type]
                             policy=Policy()) as app:
            assert app.closers == [app.db.dispose]
            dispose = app.closers[0]

            async def database() -> None:
                ran.append("database")
                await dispose()

            # Closers run newest first: the two broken ones, then the database, then `first`.
            app.closers[:] = [lambda: ran.append("first"), database, broken, broken_async]
    assert ran == ["broken_async", "broken", "database", "first"]
    failed = [entry for entry in logs if entry["event"] == "bootstrap.close_failed"]
    assert [entry["log_level"] for entry in failed] == ["error", "error"]
    assert {entry["closer"] for entry in failed} == {broken.__qualname__, broken_async.__qualname__}


async def test_hooks_between_services_are_wired_by_the_composition_root(sqlite_database_url: str) -> None:
    async with bootstrap(settings(sqlite_database_url), cluster=object(), check_cluster=False,  # type: ignore[arg-type]
                         policy=Policy()) as app:
        assert app.bus.handlers(RequestCreated) == (app.incidents.on_request_created,
                                                    app.playbooks.on_request_created)
        assert app.bus.handlers(RequestFinished) == (app.playbooks.on_request_finished,
                                                     app.incidents.on_request_finished)


async def test_chat_gateways_plug_in_and_out_through_the_registry(sqlite_database_url: str) -> None:
    async with bootstrap(settings(sqlite_database_url), cluster=object(), check_cluster=False,  # type: ignore[arg-type]
                         policy=Policy()) as app:
        first, second = ConsoleOutput(), ConsoleOutput()
        app.gateways.register(first, "general")
        assert app.dispatcher.gateways["console"] is first
        assert app.service.default_places["console"] == "general"
        app.gateways.register(second)
        app.gateways.unregister(first)  # replaced already: a no-op
        assert app.dispatcher.gateways["console"] is second
        app.gateways.unregister(second)
        assert "console" not in app.dispatcher.gateways
        # Requests made meanwhile still get a card in the default channel, delivered by the next start.
        assert app.service.default_places["console"] == "general"
