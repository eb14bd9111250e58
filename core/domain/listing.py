"""What the list endpoints ask for and what they return: filters, a page, and an opaque keyset cursor.

A cursor is the sort key of the last item of a page, encoded so that callers treat it as a token: the next
page starts strictly after it, so rows added meanwhile never shift or repeat what was already listed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from core.domain.approvals import RequestStatus
from core.domain.incidents import IncidentStatus
from core.domain.playbooks import PlaybookStatus
from core.errors import SignoffError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_AUDIT_LIMIT = 5000

T = TypeVar("T")


class BadCursor(SignoffError):
    code = "invalid_cursor"


def encode_cursor(*key: str | int) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> tuple[str | int, ...]:
    """The key a cursor holds, checked against the `types` its list expects."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        key = None
    if (not isinstance(key, list) or len(key) != len(types)
            or not all(type(part) is kind for part, kind in zip(key, types, strict=True))):
        raise BadCursor("`cursor` is not one this list gave out; pass the `next_cursor` of the previous page as it is.")
    return tuple(key)


class _Query(BaseModel):
    model_config = ConfigDict(frozen=True)

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


class RequestQuery(_Query):
    statuses: tuple[RequestStatus, ...] = ()
    requester: str | None = None
    since: datetime | None = None


class IncidentQuery(_Query):
    statuses: tuple[IncidentStatus, ...] = ()
    since: datetime | None = None


class PlaybookQuery(_Query):
    statuses: tuple[PlaybookStatus, ...] = ()


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
