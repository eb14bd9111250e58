"""`signoff audit verify` and `signoff audit rekey` (core/domain/integrity.py holds the checks)."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from adapters.db.database import Database, SqlUnitOfWork
from core.domain.events import ChainReport
from core.domain.integrity import NO_KEY, binding_problem, key_change, key_id, verify_timeline

# Read by `signoff audit rekey` only: the key the chain's last epoch was hashed with, when it had one.
PREVIOUS_KEY_VARIABLE = "SIGNOFF_AUDIT_PREVIOUS_KEY"


def _snapshot(uow: SqlUnitOfWork) -> None:
    """PostgreSQL: one snapshot for the whole walk, so events appended meanwhile do not look like a cut head.
    (A SQLite read transaction is a snapshot already.)"""
    if uow.connection.dialect.name == "postgresql":
        uow.connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


async def audit_verify(db: Database, key: bytes | None, out: TextIO | None = None) -> int:
    """0 when the hash chain is intact and every request is what was requested and signed, with its whole
    history; 1, naming the first bad event or request, otherwise."""
    stream = out or sys.stdout

    def check(uow: SqlUnitOfWork) -> tuple[ChainReport, int, str | None]:
        _snapshot(uow)
        # Streamed in the database thread: a million events are never all in memory.
        report = verify_timeline(uow.timeline, key)
        if not report.intact:
            return report, 0, None
        return report, *verify_requests(uow)

    report, checked, problem = await db.read(check)
    print(report.describe(), file=stream)
    if not report.intact:
        return 1
    if problem is not None:
        print(f"requests do not match their timeline: {problem}", file=stream)
        return 1
    print(f"requests intact: {checked} request(s) match what was requested and signed", file=stream)
    return 0


def verify_requests(uow: SqlUnitOfWork) -> tuple[int, str | None]:
    """Every stored request and its signature rows against their events, every event's request against the
    requests table; the first mismatch, named. (The events' hashes were checked by the chain walk.)"""
    checked = 0
    for request in uow.requests.scan():
        problem = binding_problem(request, uow.timeline.for_request(request.id))
        if problem is None and uow.requests.signers(request.id) != sorted(request.signers):
            extra = sorted(set(uow.requests.signers(request.id)) ^ set(request.signers))
            problem = f"{request.id}'s signatures table and the request disagree about {', '.join(extra)}"
        if problem is not None:
            return checked, problem
        checked += 1
    orphans = uow.timeline.orphan_request_ids()
    if orphans:
        return checked, (f"the timeline has events of {', '.join(orphans)} but there is no request row for "
                         f"{'it' if len(orphans) == 1 else 'them'} (deleted)")
    return checked, None


async def audit_rekey(db: Database, new_key: bytes | None, out: TextIO | None = None) -> int:
    """Start a key epoch: verify the chain under the key it was hashed with so far (none, or
    SIGNOFF_AUDIT_PREVIOUS_KEY), then append an `audit.key_changed` event hashed with SIGNOFF_AUDIT_KEY that seals
    it. Run with signoff stopped (every replica), so nothing is appended with the old key afterwards."""
    stream = out or sys.stdout
    previous_text = os.environ.get(PREVIOUS_KEY_VARIABLE)
    previous = previous_text.encode("utf-8") if previous_text else None

    def rekey(uow: SqlUnitOfWork) -> tuple[int, str]:
        uow.timeline.hold()  # nothing else appends between the walk and the key change
        if uow.timeline.head() is None and next(uow.timeline.scan(), None) is None:
            return 0, (f"the timeline is empty: nothing to re-key; new events are hashed with key {key_id(new_key)}")
        if verify_timeline(uow.timeline, new_key).intact:
            return 0, f"the timeline is already hashed with key {key_id(new_key)}: nothing to do"
        report = verify_timeline(uow.timeline, previous)
        if not report.intact:
            hint = "" if previous else f" (if it was hashed with an earlier key, set {PREVIOUS_KEY_VARIABLE} to it)"
            return 1, (f"refusing to re-key: under key {key_id(previous)} the {report.describe()}{hint}; "
                       "a key change would seal that in")
        event = key_change(at=now, new_key=new_key, old_key_id=report.epoch_key or NO_KEY,
                           sealed_from=report.epoch_from, sealed_to=report.checked, seal=report.seal or "")
        uow.timeline.append([event])
        return 0, (f"audit key changed at event {report.checked + 1}: key {key_id(new_key)} replaces key "
                   f"{report.epoch_key}; events {report.epoch_from}–{report.checked} are sealed; "
                   "`signoff audit verify` now checks the whole chain with SIGNOFF_AUDIT_KEY alone")

    now = db.clock.now()
    code, text = await db.write(rekey)
    print(text, file=stream if code == 0 else sys.stderr)
    return code

