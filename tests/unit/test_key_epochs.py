"""Key epochs of the timeline chain (core/domain/integrity.py): a key change seals the epoch it closes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from core.domain.events import GENESIS_HASH, EventType, NewEvent, TimelineEvent, link
from core.domain.integrity import NO_KEY, key_change, key_id, walk_chain

AT = datetime(2026, 1, 1, tzinfo=UTC)
A, B = b"a" * 32, b"b" * 32


def _event(n: int) -> NewEvent:
    return NewEvent(at=AT, type=EventType.incident_updated, status="open", title=f"event {n}", incident_id="INC-1")


def _chain(plan: Sequence[tuple[str, bytes | None]]) -> list[TimelineEvent]:
    """`("event", key)` appends an event hashed with key; `("rekey", new)` closes the epoch so far."""
    events: list[TimelineEvent] = []
    prev, epoch_from, epoch_key, seal_of = GENESIS_HASH, 1, plan[0][1], None
    for kind, key in plan:
        if kind == "rekey":
            report = walk_chain(events, head=(len(events), prev), key=epoch_key,
                                epoch_key_id=_first_epoch(plan))
            assert report.intact, report.describe()
            seal_of = report.seal
            new = key_change(at=AT, new_key=key, old_key_id=key_id(epoch_key), sealed_from=epoch_from,
                             sealed_to=len(events), seal=seal_of or "")
            epoch_from, epoch_key = len(events) + 1, key
            item = link(new, len(events) + 1, prev, key)
        else:
            item = link(_event(len(events) + 1), len(events) + 1, prev, key)
        events.append(item)
        prev = item.hash
    return events


def _first_epoch(plan: Sequence[tuple[str, bytes | None]]) -> str:
    return key_id(plan[0][1])


def _walk(events: list[TimelineEvent], key: bytes | None, first: bytes | None) -> tuple[bool, int | None, str]:
    report = walk_chain(events, head=(events[-1].seq, events[-1].hash), key=key, epoch_key_id=key_id(first))
    return report.intact, report.bad_seq, report.problem or ""


def test_keyless_then_key_verifies_with_the_key_alone() -> None:
    events = _chain([("event", None)] * 3 + [("rekey", A)] + [("event", A)] * 2)
    assert _walk(events, A, None)[0]
    assert events[3].type is EventType.key_changed and "replaces key none" in events[3].detail
    # Without the key, the new epoch is not vouched for.
    ok, bad, problem = _walk(events, None, None)
    assert not ok and bad == 4 and "signoff audit rekey" in problem


def test_an_edit_in_a_keyless_epoch_is_named_at_its_event() -> None:
    events = _chain([("event", None)] * 3 + [("rekey", A), ("event", A)])
    events[1] = events[1].model_copy(update={"title": "forged"})
    assert _walk(events, A, None)[:2] == (False, 2)


def test_an_edit_in_an_epoch_whose_key_is_gone_breaks_its_seal() -> None:
    events = _chain([("event", A)] * 3 + [("rekey", B), ("event", B)])
    assert _walk(events, B, A)[0]
    events[1] = events[1].model_copy(update={"title": "forged"})  # its hash cannot be checked without A
    ok, bad, problem = _walk(events, B, A)
    assert not ok and bad == 4 and "seal" in problem


def test_a_key_change_that_misnames_the_key_it_replaces_is_refused() -> None:
    events = _chain([("event", A)] * 2 + [("rekey", B), ("event", B)])
    ok, bad, problem = _walk(events, B, b"c" * 32)  # as if the first epoch had had another key
    assert not ok and bad == 3 and "replaces key" in problem


def test_two_rotations_chain_their_seals() -> None:
    events = _chain([("event", None)] * 2 + [("rekey", A), ("event", A), ("rekey", B), ("event", B)])
    assert _walk(events, B, None)[0]
    assert key_id(None) == NO_KEY and key_id(A) != key_id(B) and A.decode() not in key_id(A)
