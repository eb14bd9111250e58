"""What runs is exactly what was signed (issue: hardening, defect 2).

Someone with write access to the database edits an approved request's stored operation, or slips in a signature:
the executor refuses to run it, says so in the thread and the timeline, and `audit verify` names the request.
With `SIGNOFF_AUDIT_KEY`, even a full rewrite of the chain is caught.
"""

from __future__ import annotations

import json
from io import StringIO

import sqlalchemy as sa

from adapters.db.database import Database
from bot.database import audit_verify
from core.domain.approvals import Place, RequestStatus
from core.domain.events import EventType, canonical_json
from core.domain.policy import Person
from testkit.support import make_settings, running_app

CONSOLE = Place(platform="console", channel="console")
ALICE, BOB = Person(name="alice"), Person(name="bob")


async def _edit_request(app: object, request_id: str, change: object) -> None:
    def edit(uow: object) -> None:
        conn = uow.connection  # type: ignore[attr-defined]
        data = json.loads(conn.execute(sa.text("SELECT data FROM requests WHERE id = :i"), {"i": request_id})
                          .scalar_one())
        change(data)  # type: ignore[operator]
        conn.execute(sa.text("UPDATE requests SET data = :d WHERE id = :i"), {"d": json.dumps(data), "i": request_id})
    await app.db.write(edit)  # type: ignore[attr-defined]


async def _verify(settings: object) -> tuple[int, str]:
    out = StringIO()
    code = await audit_verify(settings, out)  # type: ignore[arg-type]
    return code, out.getvalue()


async def test_an_edited_operation_of_an_approved_request_never_runs(database_url: str) -> None:
    settings = make_settings(database_url)
    async with running_app(settings) as app:
        request = await app.service.request("rollout restart deployment/api -n prod", by=ALICE, via="console",
                                            origin=CONSOLE)
        app.sandbox.clear_requests()  # type: ignore[attr-defined]  # the dry run its card's change came from
        await app.service.sign(request.id, by=BOB, via="console")

        def retarget(data: dict[str, object]) -> None:
            data["operation"]["name"] = "web"  # type: ignore[index]

        await _edit_request(app, request.id, retarget)
        await app.settle()
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.blocked
        assert done.outcome is not None and "not what was signed" in done.outcome.summary
        writes = [r for r in app.sandbox.requests if r[0] == "PATCH"]  # type: ignore[attr-defined]
        assert writes == []  # not even the dry run went out
        events = await app.service.timeline(request.id)
        assert events[-1].type is EventType.blocked and "not what was signed" in events[-1].title
    code, text = await _verify(settings)
    assert code == 1 and request.id in text and "operation" in text


async def test_a_slipped_in_signature_never_counts(database_url: str) -> None:
    settings = make_settings(database_url)
    policy = "[risk.medium]\nquorum = 2\napprovers = [\"*\"]\n"
    async with running_app(settings, policy=policy) as app:
        request = await app.service.request("rollout restart deployment/api -n prod", by=ALICE, via="console",
                                            origin=CONSOLE)
        await app.service.sign(request.id, by=BOB, via="console")

        def forge(data: dict[str, object]) -> None:
            data["signatures"].append({"person": "mallory", "via": "console", "at": data["created_at"]})  # type: ignore[attr-defined]
            data["status"] = "approved"
            data["approved_at"] = data["created_at"]

        await _edit_request(app, request.id, forge)
        await app.db.write(lambda uow: uow.connection.execute(sa.text(  # type: ignore[attr-defined]
            "UPDATE requests SET status = 'approved' WHERE id = :i"), {"i": request.id}))
        await app.settle()
        done = await app.service.get(request.id)
        assert done.status is RequestStatus.blocked
        assert done.outcome is not None and "mallory" in (done.outcome.reason or "")
    code, text = await _verify(settings)
    assert code == 1 and request.id in text and "mallory" in text


async def test_an_intact_history_verifies(database_url: str) -> None:
    settings = make_settings(database_url)
    async with running_app(settings) as app:
        request = await app.service.request("rollout restart deployment/api -n prod", by=ALICE, via="console",
                                            origin=CONSOLE)
        await app.service.sign(request.id, by=BOB, via="console")
        await app.settle()
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded
        events = await app.service.timeline(request.id)
        signed = [e for e in events if e.type in (EventType.requested, EventType.signed)]
        assert len(signed) == 2 and all(e.digest and len(e.digest) == 64 for e in signed)
        assert len({e.digest for e in signed}) == 1
    code, text = await _verify(settings)
    assert code == 0 and "intact" in text and "1 request" in text


async def test_with_an_audit_key_a_rewritten_chain_is_caught(database_url: str) -> None:
    settings = make_settings(database_url, SIGNOFF_AUDIT_KEY="k" * 32)
    async with running_app(settings) as app:
        request = await app.service.request("rollout restart deployment/api -n prod", by=ALICE, via="console",
                                            origin=CONSOLE)
        await app.service.sign(request.id, by=BOB, via="console")
        await app.settle()
    assert (await _verify(settings))[0] == 0

    # The attacker knows the hashing scheme but not the key: they rewrite an actor and recompute every hash.
    import hashlib
    db = Database(database_url)

    def rewrite(uow: object) -> None:
        conn = uow.connection  # type: ignore[attr-defined]
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM timeline ORDER BY seq"))]
        prev = "0" * 64
        for row in rows:
            if row["type"] == "signed":
                row["actor"] = "mallory"
            row["prev_hash"] = prev
            body = {k: v for k, v in row.items() if k != "hash" and not (k == "digest" and v is None)}
            row["hash"] = hashlib.sha256((prev + canonical_json(body)).encode()).hexdigest()
            prev = row["hash"]
            conn.execute(sa.text("UPDATE timeline SET actor = :actor, prev_hash = :prev_hash, hash = :hash "
                                 "WHERE seq = :seq"), row)
        conn.execute(sa.text("UPDATE chain_head SET hash = :h"), {"h": prev})

    await db.write(rewrite)
    await db.dispose()
    code, text = await _verify(settings)
    assert code == 1 and "event 1" in text
