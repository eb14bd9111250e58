from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.domain.events import (
    GENESIS_HASH,
    EventType,
    NewEvent,
    TimelineEvent,
    format_at,
    link,
    parse_at,
    verify_chain,
)

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def chain(n: int) -> list[TimelineEvent]:
    events: list[TimelineEvent] = []
    prev = GENESIS_HASH
    for i in range(n):
        event = link(NewEvent(at=T0 + timedelta(seconds=i), type=EventType.signed, status="pending",
                              title=f"person{i} signed", actor=f"person{i}", request_id="R-1"), i + 1, prev)
        prev = event.hash
        events.append(event)
    return events


def test_intact_chain_verifies() -> None:
    events = chain(5)
    report = verify_chain(events, (5, events[-1].hash))
    assert report.intact and report.checked == 5


def test_hash_covers_every_field() -> None:
    base = chain(1)[0]
    for field, value in [("title", "x"), ("detail", "x"), ("actor", "x"), ("actor_role", "x"), ("status", "x"),
                         ("request_id", "R-2"), ("incident_id", "INC-1"), ("at", T0 + timedelta(microseconds=1))]:
        altered = base.model_copy(update={field: value})
        report = verify_chain([altered])
        assert not report.intact and report.bad_seq == 1, field


def test_altered_event_is_named() -> None:
    events = chain(5)
    events[2] = events[2].model_copy(update={"title": "mallory signed"})
    report = verify_chain(events)
    assert (report.intact, report.bad_seq) == (False, 3)
    assert "altered" in report.describe()


def test_deleted_event_is_named() -> None:
    events = chain(5)
    del events[1]
    report = verify_chain(events)
    assert (report.intact, report.bad_seq) == (False, 3)


def test_deleted_last_event_needs_the_head() -> None:
    events = chain(5)
    head = (5, events[-1].hash)
    assert verify_chain(events[:-1]).intact  # a chain alone cannot see truncation
    report = verify_chain(events[:-1], head)
    assert not report.intact and report.bad_seq == 5


def test_reordered_events_are_named() -> None:
    events = chain(5)
    swapped = [events[0], events[2].model_copy(update={"seq": 2}), events[1].model_copy(update={"seq": 3}),
               events[3], events[4]]
    report = verify_chain(swapped)
    assert (report.intact, report.bad_seq) == (False, 2)


def test_inserted_event_is_named() -> None:
    events = chain(3)
    forged = link(NewEvent(at=T0, type=EventType.signed, status="pending", title="x"), 2, events[0].hash)
    report = verify_chain([events[0], forged, *(e.model_copy(update={"seq": e.seq + 1}) for e in events[1:])])
    assert not report.intact and report.bad_seq == 3


def test_instants_keep_their_stored_form_and_read_back_exactly() -> None:
    """Hashes cover the stored text of instants: the fast path writes what strftime wrote, and reads it back."""
    rng = random.Random(17)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(5000):
        at = start + timedelta(seconds=rng.uniform(-3e10, 3e10), microseconds=rng.randrange(1_000_000))
        if n % 3 == 0:
            at = at.replace(microsecond=0)
        if n % 4 == 0:
            at = at.astimezone(timezone(timedelta(hours=rng.randint(-12, 12))))
        text = format_at(at)
        assert text == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert parse_at(text) == at
    assert format_at(datetime(2026, 12, 5, 8, 0)) == "2026-12-05T08:00:00.000000Z"  # naive means UTC


@pytest.mark.parametrize("text", ["2026-12-05 08:00:00.123456Z", "2026-12-05T08:00:00.123456+02:00",
                                  "2026-W49-6T08:00:00.123456Z", "2026-12-05T08:00:00,123456Z", "2026-12-05"])
def test_other_forms_of_an_instant_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_at(text)
