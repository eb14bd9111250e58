"""`signoff audit verify --file F`: an export (`signoff audit export`, JSON lines) verified offline, with no
database: links, hashes per key epoch (the key from SIGNOFF_AUDIT_KEY when the chain uses one) and seals.

The file is read twice, streamed, so an export of millions of events is never all in memory: once to find the
key changes (which key hashed the first events) and its ends, once to walk it. A file that is not an export
exits 2 naming the line. An export made `--after` some event is walked from there: its first link is taken as
given. What a file alone cannot show is events cut from its end: compare its last seq and hash with
`signoff audit export --after <last seq>` or with the live chain's head.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from core.domain.events import EventType, TimelineEvent, parse_at
from core.domain.integrity import epoch_before, walk_chain
from core.errors import SignoffError

FIELDS = ("seq", "at", "type", "status", "title", "prev_hash", "hash")


class NotAnExport(SignoffError):
    code = "not_an_export"


def _event(line_number: int, text: str) -> TimelineEvent:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotAnExport(f"line {line_number} is not JSON ({exc.msg}); `signoff audit export` writes one JSON "
                          "object a line.") from None
    if not isinstance(data, dict) or any(name not in data for name in FIELDS):
        raise NotAnExport(f"line {line_number} is not an exported event: each line is a JSON object with "
                          + ", ".join(f"`{name}`" for name in FIELDS) + ".")
    try:
        return TimelineEvent.model_validate({**data, "at": parse_at(str(data["at"]))})
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        what = f"`{first['loc'][0]}`: {first['msg']}" if first and first["loc"] else str(exc)
        raise NotAnExport(f"line {line_number} is not an exported event ({what}).") from None


def read_events(path: Path) -> Iterator[TimelineEvent]:
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if text.strip():
                yield _event(number, text)


def verify_file(path: Path, key: bytes | None, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    try:
        first: TimelineEvent | None = None
        last: TimelineEvent | None = None
        changes = []
        for event in read_events(path):
            first = first or event
            last = event
            if event.type is EventType.key_changed:
                changes.append(event)
        if first is None or last is None:
            raise NotAnExport(f"{path} holds no events; export the chain with `signoff audit export > {path.name}`.")
        report = walk_chain(read_events(path), head=(last.seq, last.hash), key=key,
                            epoch_key_id=epoch_before(changes, key), start=(first.seq, first.prev_hash))
    except OSError as exc:
        print(f"signoff: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"signoff: {path} is not UTF-8 text; `signoff audit export` writes JSON lines in UTF-8.",
              file=sys.stderr)
        return 2
    except NotAnExport as exc:
        print(f"signoff: {path}: {exc.message}", file=sys.stderr)
        return 2
    print(report.describe().replace("timeline", f"export {path.name}", 1)
          + (f" (events {first.seq}–{last.seq}; last hash {last.hash})" if report.intact else ""), file=stream)
    return 0 if report.intact else 1
