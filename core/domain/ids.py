"""Typed ids: a request (`R-42`), an incident (`INC-7`), a playbook (`PB-3`).

Text a person typed, a button's value, a URL segment or a stored key is parsed once, at the
edge, into one of these; downstream code dispatches on the type, never on a string prefix.
Each type is a `str` in its canonical form, so it goes on the wire and into the database
exactly as before (`R-42`, `INC-…`, `PB-…`).

The constructors are strict (canonical text only; `fullmatch`, so a trailing newline is never
part of an id). The `parse_*` functions are lenient the way people are: surrounding
whitespace, lower case, a bare request number.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Self

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from core.errors import NotFound, ParseError


class _Id(str):
    """A canonical id. `PATTERN` is the whole canonical form (checked with `fullmatch`)."""

    __slots__ = ()
    PATTERN: ClassVar[re.Pattern[str]]

    def __new__(cls, value: str) -> Self:
        if not isinstance(value, str) or not cls.PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not a canonical {cls.__name__}")
        return super().__new__(cls, value)

    @classmethod
    def stored(cls, text: str) -> Self | None:
        """A key read back from storage, when it is one of these (canonical text only)."""
        return cls(text) if cls.PATTERN.fullmatch(text) else None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # A model field typed with an id holds an already-parsed id; plain text is parsed strictly.
        return core_schema.no_info_plain_validator_function(
            lambda value: value if isinstance(value, cls) else cls(value),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


class RequestId(_Id):
    __slots__ = ()
    PATTERN = re.compile(r"R-[0-9]{1,9}")


class IncidentId(_Id):
    __slots__ = ()
    PATTERN = re.compile(r"INC-[A-Z0-9][A-Z0-9_-]{0,39}")


class PlaybookId(_Id):
    __slots__ = ()
    PATTERN = re.compile(r"PB-[A-Z0-9][A-Z0-9_-]{0,39}")


AnyId = RequestId | IncidentId | PlaybookId
Subject = RequestId | IncidentId  # what has a status or a timeline

REQUEST_FORMS = "request ids look like R-42"
INCIDENT_FORMS = "incident ids look like INC-7"
PLAYBOOK_FORMS = "playbook ids look like PB-3"
_ID_TYPES: tuple[type[RequestId] | type[IncidentId] | type[PlaybookId], ...] = (RequestId, IncidentId, PlaybookId)


def _canonical(text: str) -> str:
    return text.strip().upper()


def _named(text: str) -> str:
    return text.strip()[:40]


def parse_request_id(text: str) -> RequestId:
    """`r-42`, `42`, ` R-42 ` → `R-42`; anything else is named back to the person."""
    cleaned = _canonical(text)
    if cleaned.isascii() and cleaned.isdigit():
        cleaned = f"R-{cleaned}"
    found = RequestId.stored(cleaned)
    if found is None:
        raise NotFound(f"`{_named(text)}` is not a request id; {REQUEST_FORMS}.")
    return found


def parse_incident_id(text: str) -> IncidentId:
    """`inc-db1` → `INC-DB1`: incident ids are upper case wherever they come from (chat, API, alerts)."""
    found = IncidentId.stored(_canonical(text))
    if found is None:
        raise ParseError(f"`{_named(text)}` is not an incident id; {INCIDENT_FORMS}.")
    return found


def parse_playbook_id(text: str) -> PlaybookId:
    found = PlaybookId.stored(_canonical(text))
    if found is None:
        raise ParseError(f"`{_named(text)}` is not a playbook id; {PLAYBOOK_FORMS}.")
    return found


def parse_subject(text: str) -> Subject:
    """A request or an incident (`timeline R-42`, `timeline INC-7`)."""
    found = IncidentId.stored(_canonical(text))
    return found if found is not None else parse_request_id(text)


def parse_id(text: str) -> AnyId:
    """Any id a person may type: a request (`R-42`, `42`), an incident (`INC-7`) or a playbook (`PB-3`)."""
    cleaned = _canonical(text)
    for kind in _ID_TYPES:
        found = kind.stored(cleaned)
        if found is not None:
            return found
    if cleaned.isascii() and cleaned.isdigit():
        return parse_request_id(cleaned)
    raise ParseError(f"`{_named(text)}` is not an id; {REQUEST_FORMS}, {INCIDENT_FORMS}, {PLAYBOOK_FORMS}.")


def as_request_id(value: str) -> RequestId:
    """A typed id as it is; text from a caller outside the chat (an API path, a script) parsed here, once."""
    return value if isinstance(value, RequestId) else parse_request_id(value)


def as_incident_id(value: str) -> IncidentId:
    return value if isinstance(value, IncidentId) else parse_incident_id(value)


def as_playbook_id(value: str) -> PlaybookId:
    return value if isinstance(value, PlaybookId) else parse_playbook_id(value)


def as_subject(value: str) -> Subject:
    return value if isinstance(value, RequestId | IncidentId) else parse_subject(value)


def stored_key(text: str | None) -> AnyId | None:
    """A key the outbox stored (canonical), as its typed id; None for other keys (`rate-INC-7`)."""
    if text is None:
        return None
    for kind in _ID_TYPES:
        found = kind.stored(text)
        if found is not None:
            return found
    return None
