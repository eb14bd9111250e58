"""`signoff console` at a real terminal: a pseudo-terminal, rendered by a terminal emulator (pyte) as a person
sees it. Cards arriving while the prompt waits print above it, Tab completes, history is kept in a file."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyte
import pytest

ROOT = Path(__file__).resolve().parents[2]
COLUMNS, LINES = 140, 60


class Terminal:
    def __init__(self, tmp_path: Path) -> None:
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""  # what the program wrote, for text pyte renders wrongly (U+FE0F after an emoji)
        main, secondary = pty.openpty()
        os.set_blocking(main, False)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_", "DISCORD_"))}
        # pyte does not answer cursor position requests; a real terminal does (prompt_toolkit asks otherwise).
        env.update({"PYTHONPATH": str(ROOT), "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1",
                    "COLUMNS": str(COLUMNS), "LINES": str(LINES),
                    "XDG_STATE_HOME": str(tmp_path / "state"), "SIGNOFF_LOG_FORMAT": "json",
                    "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"})
        self.process = subprocess.Popen([sys.executable, "-m", "bot", "console"], stdin=secondary,
                                        stdout=secondary, stderr=secondary, cwd=tmp_path, env=env,
                                        start_new_session=True)
        os.close(secondary)
        self.main = main
        import fcntl
        import struct
        import termios
        fcntl.ioctl(main, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))

    def pump(self, seconds: float = 0.05) -> None:
        ready, _, _ = select.select([self.main], [], [], seconds)
        if ready:
            with contextlib.suppress(OSError):
                data = os.read(self.main, 65536)
                self.raw += data
                self.stream.feed(data)

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def wait_for(self, check: Callable[[list[str]], bool], timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump()
            if check(self.lines()):
                return self.lines()
            if self.process.poll() is not None:
                self.pump()
                break
        raise AssertionError("the screen never showed it:\n" + "\n".join(self.lines()))

    def type(self, text: str) -> None:
        os.write(self.main, text.encode())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        os.close(self.main)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        term.close()


def _last(lines: list[str]) -> str:
    return next((line for line in reversed(lines) if line.strip()), "")


def test_cards_print_above_the_prompt_tab_completes_and_history_is_kept(terminal: Terminal, tmp_path: Path) -> None:
    terminal.wait_for(lambda lines: _last(lines).startswith("alice>"))
    terminal.type("req\t")
    terminal.wait_for(lambda lines: _last(lines).startswith("alice> request"))
    terminal.type(" rollout restart deployment/api -n prod risk=high\r")
    # The card is delivered by the outbox worker while the prompt waits: it appears above a fresh prompt,
    # never glued to it.
    screen = terminal.wait_for(lambda lines: any("R-1" in line and "┌" in line for line in lines)
                               and _last(lines) == "alice>")
    assert not any(line.startswith("alice> ┌") or line.startswith("alice> │") for line in screen)
    card_row = next(i for i, line in enumerate(screen) if "┌" in line and "R-1" in line)
    prompt_row = max(i for i, line in enumerate(screen) if line.startswith("alice>"))
    assert card_row < prompt_row

    terminal.type("as b\t")  # people complete too (none in the built-in policy: nothing happens)
    terminal.type("\x15")  # Ctrl-U clears the line
    terminal.type("as bob\r")
    terminal.wait_for(lambda lines: _last(lines) == "bob>")
    terminal.type("appr\t")
    terminal.wait_for(lambda lines: _last(lines).startswith("bob> approve"))
    terminal.type(" R-\t")  # the request id completes
    terminal.wait_for(lambda lines: _last(lines).startswith("bob> approve R-1"))
    terminal.type("\r")
    terminal.wait_for(lambda lines: any("R-1 card: pending · ▰▱ 1/2" in line for line in lines))
    assert "You signed R-1 (▰▱ 1/2)" in terminal.raw.decode(errors="replace")
    terminal.type("quit\r")
    terminal.process.wait(timeout=30)
    assert terminal.process.returncode == 0
    history = (tmp_path / "state" / "signoff" / "console_history").read_text()
    assert "+request rollout restart deployment/api -n prod risk=high" in history
    assert "+approve R-1" in history
