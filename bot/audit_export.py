"""`signoff audit export`: the timeline chain as JSON lines (each line the body its hash covers, plus `hash`)
or as CEF for syslog-based SIEMs, streamed page by page so that a million events are never all in memory."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.database import open_database
from bot.settings import Settings
from core.domain.events import parse_at
from core.domain.text import visible

PAGE = 5000
VENDOR, PRODUCT, VERSION = "signoff", "signoff", "1"
# How loud each event type is in a SIEM: refusals and failures stand out, the interrupted unknown most.
_SEVERITY = {"refused": 5, "rejected": 4, "expired": 4, "blocked": 7, "failed": 7, "interrupted": 8}


# What JSON leaves raw but a terminal or a log viewer would obey (C1 controls, direction and line-separator
# characters): written as JSON escapes, which parse back to the very same text, so the hashes still hold.
_OBEYED = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def jsonl_line(event: dict[str, Any]) -> str:
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return _OBEYED.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _cef_header(value: object) -> str:
    # Shown as escapes first (a terminal must not obey them), then CEF's own escapes over the result.
    text = visible(str(value).replace("\r", " ").replace("\n", " "))
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _cef_value(value: object) -> str:
    lines = re.split(r"\r\n|\r|\n", str(value))
    return "\\n".join(visible(line).replace("\\", "\\\\").replace("=", "\\=") for line in lines)


def cef_line(event: dict[str, Any]) -> str:
    """One ArcSight CEF:0 record: the event type is the signature id, the title its name."""
    kind = str(event["type"])
    moment = parse_at(str(event["at"])) if str(event["at"]).endswith("Z") else datetime.fromisoformat(event["at"])
    extension = {
        "rt": int(moment.astimezone(UTC).timestamp() * 1000),
        "act": kind, "outcome": event.get("status", ""), "suser": event.get("actor", ""),
        "suid": event.get("actor_role", ""), "msg": event.get("detail", ""),
        "cn1Label": "seq", "cn1": event["seq"],
        "cs1Label": "request", "cs1": event.get("request_id") or "",
        "cs2Label": "incident", "cs2": event.get("incident_id") or "",
        "cs3Label": "prev_hash", "cs3": event["prev_hash"],
        "cs4Label": "hash", "cs4": event["hash"],
    }
    if event.get("digest"):
        extension.update({"cs5Label": "digest", "cs5": event["digest"]})
    header = "|".join(_cef_header(part) for part in (
        "CEF:0", VENDOR, PRODUCT, VERSION, kind, event.get("title", kind), _SEVERITY.get(kind, 3)))
    return header + "|" + " ".join(f"{name}={_cef_value(value)}" for name, value in extension.items())


FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {"jsonl": jsonl_line, "cef": cef_line}


def render(events: Iterable[dict[str, Any]], fmt: str) -> Iterator[str]:
    line = FORMATS[fmt]
    for event in events:
        yield line(event) + "\n"


def _page_after(after: int) -> Callable[[Any], list[dict[str, Any]]]:
    return lambda uow: uow.history.chain(after=after, limit=PAGE)


async def audit_export(settings: Settings, *, after: int = 0, fmt: str = "jsonl", out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    async with open_database(settings) as db:
        while True:
            page = await db.read(_page_after(after))
            stream.writelines(render(page, fmt))
            if len(page) < PAGE:
                break
            after = int(page[-1]["seq"])
    stream.flush()
    return 0
