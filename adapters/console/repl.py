"""The local chat: errbot's text backend in spirit. One terminal plays every person.

`as <person>` switches who is typing; `approve`/`reject` stand in for the card buttons;
`thread <id> <text>` replies in a request's thread. When standard input is not a terminal
the session is a script: each line is echoed and run to completion before the next.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import shlex
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from adapters.console.render import card_text, card_update_text, private_text, thread_text
from core.app.handlers import APPROVE_REACTIONS, REJECT_REACTIONS, ChatCommands
from core.chat.cards import Card, Mentions
from core.chat.commands import ChatContext, Vote
from core.chat.messages import MessageRef
from core.domain.approvals import Place
from core.domain.ids import parse_playbook_id, parse_request_id
from core.errors import SignoffError

PLATFORM = "console"
CHANNEL = "console"

CONSOLE_HELP = (
    "console extras: `as <person>` to act as someone else · `approve <id> [comment=\"…\"]` / `reject <id>` "
    "for the buttons · "
    "`rate <INC-id> <1-5>` for the rating buttons · `react <PB-id> ✅|👍|❌|👎` for reactions on a playbook "
    "offer · `thread <id> <text>` to reply in a request's thread · `alert <AlertName> label=value …` to play "
    "Alertmanager · `quit`"
)


class ConsoleOutput:
    """The console as a chat platform: the outbox dispatcher delivers here."""

    platform = PLATFORM

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._ids = itertools.count(1)
        self._keys: dict[str, str] = {}

    def write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    async def post_card(self, channel: str, card: Card, *, token: str | None = None,
                        retry: bool = False) -> MessageRef:
        message_id = f"m{next(self._ids)}"
        self._keys[message_id] = card.key
        self.write(card_text(card))
        return MessageRef(platform=PLATFORM, channel=channel, message_id=message_id, thread=message_id)

    async def update_card(self, ref: MessageRef, card: Card) -> None:
        self.write(card_update_text(card))

    async def post_reply(
        self, ref: MessageRef, text: str, card: Card | None = None, *, mentions: Mentions | None = None,
        token: str | None = None, retry: bool = False,
    ) -> MessageRef:
        # The console pages nobody: whoever reads it sees every message.
        key = self._keys.get(ref.message_id, ref.message_id)
        body = text if card is None else (text + "\n" + card_text(card)).strip()
        self.write(thread_text(key, body))
        message_id = f"m{next(self._ids)}"
        self._keys[message_id] = key
        return MessageRef(platform=PLATFORM, channel=ref.channel, message_id=message_id, thread=ref.thread)

    async def post_message(
        self, channel: str, text: str, card: Card | None = None, *, mentions: Mentions | None = None,
        token: str | None = None, retry: bool = False,
    ) -> MessageRef:
        body = text if card is None else (text + "\n" + card_text(card)).strip()
        self.write(body)
        message_id = f"m{next(self._ids)}"
        return MessageRef(platform=PLATFORM, channel=channel, message_id=message_id, thread=message_id)


    async def post_direct(self, user: str, text: str, card: MessageRef) -> MessageRef:
        self.write(f"(to {user}) {text} {self._keys.get(card.message_id, card.message_id)}")
        message_id = f"m{next(self._ids)}"
        return MessageRef(platform=PLATFORM, channel=user, message_id=message_id)


# Takes an Alertmanager webhook payload, as the webhook would, and tells `refused` why each alert it cannot
# take was refused before it takes the others. The composition root supplies it: the console knows no
# Alertmanager parsing of its own.
AlertSink = Callable[[dict[str, Any], Callable[[str], None]], Awaitable[object]]


def alert_payload(text: str, *, at: datetime | None = None) -> dict[str, Any]:
    """`KubePodCrashLooping namespace=prod pod=api-1 description="..."` as an Alertmanager v4 payload."""
    words = shlex.split(text)
    if not words or "=" in words[0]:
        raise ValueError("Use `alert <AlertName> label=value ... [summary=\"…\"] [description=\"…\"]`.")
    labels: dict[str, str] = {"alertname": words[0]}
    annotations: dict[str, str] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"`{word[:40]}` is not label=value.")
        (annotations if key in ("summary", "description") else labels)[key] = value
    started = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "version": "4", "status": "firing", "receiver": "signoff", "groupLabels": {"alertname": words[0]},
        "commonLabels": labels, "commonAnnotations": annotations, "externalURL": "http://alertmanager.local",
        "groupKey": f"{{}}:{{alertname=\"{words[0]}\"}}", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": labels, "annotations": annotations, "startsAt": started,
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": fingerprint}],
    }


class Console:
    def __init__(self, chat: ChatCommands, output: ConsoleOutput, *, person: str = "alice",
                 alerts: AlertSink | None = None) -> None:
        self._chat = chat
        self._out = output
        self._alerts = alerts
        self.person = person

    def context(self) -> ChatContext:
        return ChatContext(platform=PLATFORM, account=self.person, place=Place(platform=PLATFORM, channel=CHANNEL))

    async def line(self, text: str) -> bool:
        """Run one line; False when the session should end."""
        text = text.strip()
        if not text or text.startswith("#"):
            return True
        word, _, rest = text.partition(" ")
        word = word.lower()
        if word in ("quit", "exit"):
            return False
        if word == "as":
            name = rest.strip()
            if not name or " " in name:
                self._out.write("  `as` takes one name, like `as bob`.")
            else:
                self.person = name
                self._out.write(f"  (you are now {name})")
            return True
        if word == "alert" and self._alerts is not None:
            try:
                payload = alert_payload(rest)
            except ValueError as exc:
                self._out.write(private_text(self.person, str(exc)))
                return True
            alert = payload["alerts"][0]
            self._out.write(f"🚨 Alertmanager: {alert['labels']['alertname']} firing "
                            + " ".join(f"{k}={v}" for k, v in alert["labels"].items() if k != "alertname"))
            await self._alerts(payload, lambda error: self._out.write(private_text(self.person, error)))
            return True
        if word == "react":
            playbook_id, _, emoji = rest.strip().partition(" ")
            emoji = emoji.strip()
            if not playbook_id or emoji not in APPROVE_REACTIONS | REJECT_REACTIONS:
                self._out.write(private_text(self.person, "Use `react PB-1 ✅` (✅ or 👍 approve, ❌ or 👎 reject)."))
                return True
            try:
                playbook = parse_playbook_id(playbook_id)
            except SignoffError as exc:
                self._out.write(private_text(self.person, exc.message))
                return True
            self._out.write(thread_text(playbook, f"{self.person} reacted {emoji}"))
            reply = await self._chat.run(Vote(playbook=playbook, approve=emoji in APPROVE_REACTIONS), self.context())
            self._out.write(private_text(self.person, reply.text))
            return True
        if word == "thread":
            request_id, _, said = rest.strip().partition(" ")
            self._out.write(thread_text(request_id.upper() or "?", f"{self.person}: {said}"))
            try:
                answered = await self._chat.thread_message(said, parse_request_id(request_id), self.context())
            except Exception as exc:
                self._out.write(private_text(self.person, str(exc)))
                return True
            if not answered:
                self._out.write(private_text(self.person, "(chatter in the thread; signoff answers only "
                                                          "`timeline`, `status` and `help` there)"))
            return True
        reply = await self._chat.handle(text, self.context())
        body = reply.text + ("\n" + CONSOLE_HELP if word == "help" else "")
        self._out.write(private_text(self.person, body))
        return True


async def run_script(console: Console, lines: list[str], settle: object, echo: TextIO | None = None) -> None:
    """Feed lines one by one, letting executions and deliveries finish after each."""
    out = echo or sys.stdout
    for raw in lines:
        text = raw.rstrip("\n")
        if not text.strip():
            continue
        if text.lstrip().startswith("#"):
            out.write(f"\n{text.strip()}\n")
            continue
        out.write(f"{console.person}> {text.strip()}\n")
        out.flush()
        keep_going = await console.line(text)
        await settle()  # type: ignore[operator]
        if not keep_going:
            return


async def read_lines_interactively(console: Console, prompt_out: TextIO | None = None) -> None:
    out = prompt_out or sys.stdout
    while True:
        out.write(f"{console.person}> ")
        out.flush()
        try:
            text = await asyncio.to_thread(sys.stdin.readline)
        except (EOFError, KeyboardInterrupt):
            return
        if text == "":
            return
        if not await console.line(text):
            return
