"""The console on a terminal, through prompt_toolkit: cards and notes print above the prompt (they arrive from
the outbox at any time, through `AbovePrompt`), history is kept in a file, and Tab completes commands,
request ids and targets.

Pipes and scripts keep the plain line mode (repl.run_script); this is only for a person at a terminal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app_or_none, run_in_terminal
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.patch_stdout import patch_stdout

from adapters.console.repl import Console

COMMANDS = (
    "request", "approve", "reject", "status", "timeline", "list", "cancel", "resolve", "incidents", "playbooks",
    "help", "as", "thread", "rate", "react", "alert", "quit",
)
# Commands whose next word is a request id (R-…).
TAKES_AN_ID = {"approve", "reject", "status", "timeline", "cancel", "thread"}
ACTIONS = ("rollout restart ", "scale ", "rollout undo ", "delete pod ", "cordon ", "uncordon ", "drain ")


class AbovePrompt:
    """A stream for the console's output that never writes into the line being typed: while a prompt is
    shown, the text goes above it (the prompt is redrawn below); otherwise it is written at once, so a
    command's answer always comes before the next prompt."""

    def __init__(self, terminal: TextIO) -> None:
        self._terminal = terminal
        self._pending: set[asyncio.Future[None]] = set()

    def write(self, text: str) -> int:
        app = get_app_or_none()
        if app is not None and app.is_running:
            # Kept until done (prompt_toolkit runs these in order); drained before the next line runs.
            printed = asyncio.ensure_future(run_in_terminal(lambda: self._now(text), in_executor=False))
            self._pending.add(printed)
            printed.add_done_callback(self._pending.discard)
        else:
            self._now(text)
        return len(text)

    def _now(self, text: str) -> None:
        self._terminal.write(text)
        self._terminal.flush()

    def flush(self) -> None:
        self._terminal.flush()

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


class Known:
    """What completion offers beyond the fixed words, refreshed between lines (completion itself is sync)."""

    def __init__(self) -> None:
        self.request_ids: list[str] = []
        self.targets: list[str] = []
        self.people: list[str] = []


class ConsoleCompleter(Completer):
    def __init__(self, known: Known) -> None:
        self._known = known

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        words = before.split()
        ends_in_space = before.endswith(" ")
        current = "" if ends_in_space or not words else words[-1]
        done = words if ends_in_space else words[:-1]
        yield from _matching(self._candidates(done), current)

    def _candidates(self, done: list[str]) -> Iterable[str]:
        if not done:
            return COMMANDS
        command = done[0].lower()
        if len(done) == 1 and command in TAKES_AN_ID:
            return self._known.request_ids
        if len(done) == 1 and command == "as":
            return self._known.people
        if command == "request":
            text = " ".join(done[1:])
            if len(done) == 1:
                return [action.strip() for action in ACTIONS]
            if any((text + " ").startswith(action) for action in ACTIONS) and len(done) <= 3:
                return self._known.targets
            return ("risk=", "reason=", "incident=")
        return ()


def _matching(candidates: Iterable[str], current: str) -> Iterator[Completion]:
    lowered = current.lower()
    for candidate in candidates:
        if candidate.lower().startswith(lowered) and candidate != current:
            yield Completion(candidate, start_position=-len(current))


async def read_lines_with_prompt(console: Console, *, history: Path, refresh: Callable[[Known], Awaitable[None]],
                                 output: AbovePrompt, session: PromptSession[str] | None = None) -> None:
    """Prompt until `quit` or end of input; `refresh` updates what completion knows before each prompt;
    `output` is the stream the console's output was given."""
    known = Known()
    history.parent.mkdir(parents=True, exist_ok=True)
    prompt: PromptSession[str] = session or PromptSession(
        history=FileHistory(str(history)), completer=ConsoleCompleter(known), complete_while_typing=False)
    # The console's output goes through `output`; anything else printed while the prompt waits goes above it too.
    with patch_stdout(raw=True):
        while True:
            await output.drain()
            await refresh(known)
            try:
                text = await prompt.prompt_async(f"{console.person}> ")
            except (EOFError, KeyboardInterrupt):
                return
            if not await console.line(text):
                return
