"""`signoff audit verify`, as one function the CLI and the web view both call."""

from __future__ import annotations

import sys
from typing import TextIO

from adapters.db.database import Database, SqlUnitOfWork
from core.domain.events import verify_chain
from core.domain.integrity import binding_problem


async def audit_verify(db: Database, key: bytes | None, out: TextIO | None = None) -> int:
    """0 when the hash chain is intact and every request is what was requested and signed; 1, naming the
    first bad event or request, otherwise."""
    stream = out or sys.stdout
    # Streamed in the database thread: a million events are never all in memory.
    report = await db.read(lambda uow: verify_chain(uow.timeline.scan(), uow.timeline.head(), key))
    print(report.describe(), file=stream)
    if not report.intact:
        return 1
    checked, problem = await db.read(lambda uow: verify_requests(uow, key))
    if problem is not None:
        print(f"requests do not match their timeline: {problem}", file=stream)
        return 1
    print(f"requests intact: {checked} request(s) match what was requested and signed", file=stream)
    return 0


def verify_requests(uow: SqlUnitOfWork, key: bytes | None) -> tuple[int, str | None]:
    """Every stored request and its signature rows against their events; the first mismatch, named."""
    checked = 0
    for request in uow.requests.scan():
        problem = binding_problem(request, uow.timeline.for_request(request.id), key)
        if problem is None and uow.requests.signers(request.id) != sorted(request.signers):
            extra = sorted(set(uow.requests.signers(request.id)) ^ set(request.signers))
            problem = f"{request.id}'s signatures table and the request disagree about {', '.join(extra)}"
        if problem is not None:
            return checked, problem
        checked += 1
    return checked, None
