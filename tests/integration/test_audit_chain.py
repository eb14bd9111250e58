"""The chain as a whole protects each request (issue 18, defects 3 and 6).

An attacker with write access to the database, without `SIGNOFF_AUDIT_KEY`, knows the hashing scheme: they edit
rows and recompute hashes where that suits them. The executor checks a request's events against their
predecessors up to the chain head before anything runs; `audit verify` treats a missing head as a broken chain
and checks that every request's events are all there, from creation to its end state.
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
import sqlalchemy as sa

from bot.database import audit_verify
from bot.settings import Settings
from core.domain.approvals import ApprovalRequest, Place, RequestStatus, signed_digest
from core.domain.events import chain_hash
from core.domain.policy import Person
from core.errors import SignoffError
from testkit.support import make_settings, running_app

CONSOLE = Place(platform="console", channel="console")
ALICE, BOB, CAROL = Person(name="alice"), Person(name="bob"), Person(name="carol")
RESTART = "rollout restart deployment/api -n prod"


async def _verify(settings: Settings) -> tuple[int, str]:
    out = StringIO()
    code = await audit_verify(settings, out)
    return code, out.getvalue()


def _rows(conn: sa.Connection, where: str = "1 = 1", **params: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM timeline WHERE {where} ORDER BY seq"),
                                                   params)]


def _rehash(row: dict[str, Any]) -> str:
    """What the attacker computes: the event's own sha256 over its (edited) content and its stored prev_hash."""
    body = {k: v for k, v in row.items() if k != "hash" and not (k == "digest" and v is None)}
    return chain_hash(row["prev_hash"], body)


async def test_a_retargeted_request_with_rehashed_digest_events_never_runs(database_url: str) -> None:
    settings = make_settings(database_url)
    policy = "[risk.medium]\nquorum = 2\napprovers = [\"*\"]\n"
    async with running_app(settings, policy=policy) as app:
        request = await app.service.request(RESTART, by=ALICE, via="console", origin=CONSOLE)
        app.sandbox.clear_requests()  # type: ignore[attr-defined]  # the dry run its card's change came from
        rid = request.id
        await app.service.sign(rid, by=BOB, via="console")

        def retarget(uow: Any) -> None:
            # The request row and its two digest events (requested, signed), each re-hashed on its own.
            conn = uow.connection
            data = json.loads(conn.execute(sa.text("SELECT data FROM requests WHERE id = :i"), {"i": rid})
                              .scalar_one())
            data["operation"]["name"] = "coredns"
            data["operation"]["namespace"] = "kube-system"
            digest = signed_digest(ApprovalRequest.model_validate(data))
            conn.execute(sa.text("UPDATE requests SET data = :d WHERE id = :i"), {"d": json.dumps(data), "i": rid})
            rows = _rows(conn, "request_id = :i AND digest IS NOT NULL", i=rid)
            assert [r["type"] for r in rows] == ["requested", "signed"]
            for row in rows:
                row["digest"] = digest
                row["title"] = row["title"].replace("deployment/api -n prod", "deployment/coredns -n kube-system")
                row["hash"] = _rehash(row)
                conn.execute(sa.text("UPDATE timeline SET digest = :digest, title = :title, hash = :hash "
                                     "WHERE seq = :seq"), row)

        await app.db.write(retarget)
        await app.service.sign(rid, by=CAROL, via="console")
        await app.settle()
        done = await app.service.get(rid)
        writes = [r for r in app.sandbox.requests if r[0] == "PATCH"]  # type: ignore[attr-defined]
        assert writes == []  # neither coredns nor anything else was touched, not even by a dry run
        assert done.status is RequestStatus.blocked, done.status
        assert done.outcome is not None and "event" in (done.outcome.reason or "")
    code, text = await _verify(settings)
    assert code == 1 and "broken at event 2" in text


async def test_an_intact_request_after_many_other_events_still_runs(database_url: str) -> None:
    settings = make_settings(database_url)
    async with running_app(settings) as app:
        first = await app.service.request(RESTART, by=ALICE, via="console", origin=CONSOLE)
        for _ in range(3):
            other = await app.service.request("scale deployment/web -n prod --replicas=3", by=ALICE,
                                              via="console", origin=CONSOLE)
            await app.service.cancel(other.id, by=ALICE, via="console")
        await app.service.sign(first.id, by=BOB, via="console")
        await app.settle()
        assert (await app.service.get(first.id)).status is RequestStatus.succeeded
    assert (await _verify(settings))[0] == 0


async def _succeeded(settings: Settings) -> str:
    async with running_app(settings) as app:
        request = await app.service.request(RESTART, by=ALICE, via="console", origin=CONSOLE)
        await app.service.sign(request.id, by=BOB, via="console")
        await app.settle()
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded
        types = [str(e.type) for e in await app.service.timeline(request.id)]
        assert types[:4] == ["requested", "signed", "approved", "claimed"], types
    return request.id


async def _sql(settings: Settings, *statements: str) -> None:
    from adapters.db.database import Database

    db = Database(settings.database_url)

    def run(uow: Any) -> None:
        for statement in statements:
            uow.connection.execute(sa.text(statement))

    try:
        await db.write(run)
    finally:
        await db.dispose()


async def test_a_cut_tail_without_the_chain_head_is_caught(database_url: str) -> None:
    settings = make_settings(database_url)
    await _succeeded(settings)
    assert (await _verify(settings))[0] == 0
    await _sql(settings, "DELETE FROM chain_head", "DELETE FROM timeline WHERE seq >= 4")
    code, text = await _verify(settings)
    assert code == 1, text
    assert "head" in text


async def test_a_cut_tail_with_a_forged_head_is_caught_by_the_request(database_url: str) -> None:
    settings = make_settings(database_url)
    rid = await _succeeded(settings)
    await _sql(settings, "DELETE FROM timeline WHERE seq >= 4",
               "UPDATE chain_head SET seq = 3, hash = (SELECT hash FROM timeline WHERE seq = 3)")
    code, text = await _verify(settings)
    assert code == 1, text
    assert rid in text and "succeeded" in text and "claimed" in text


async def test_a_deleted_request_row_is_caught(database_url: str) -> None:
    settings = make_settings(database_url)
    rid = await _succeeded(settings)
    await _sql(settings, f"DELETE FROM signatures WHERE request_id = '{rid}'",
               f"DELETE FROM requests WHERE id = '{rid}'")
    code, text = await _verify(settings)
    assert code == 1, text
    assert rid in text and "no request" in text


async def test_a_request_row_without_events_is_caught(database_url: str) -> None:
    settings = make_settings(database_url)
    async with running_app(settings) as app:
        first = await app.service.request(RESTART, by=ALICE, via="console", origin=CONSOLE)
        second = await app.service.request("scale deployment/web -n prod --replicas=3", by=ALICE, via="console",
                                           origin=CONSOLE)
    # The second request's events are the tail: cut them and point the head at the first request's last event.
    await _sql(settings, f"DELETE FROM timeline WHERE request_id = '{second.id}'",
               "UPDATE chain_head SET seq = (SELECT max(seq) FROM timeline), "
               "hash = (SELECT hash FROM timeline WHERE seq = (SELECT max(seq) FROM timeline))")
    code, text = await _verify(settings)
    assert code == 1, text
    assert second.id in text and first.id not in text


async def test_with_the_head_record_gone_nothing_is_appended_or_run(database_url: str) -> None:
    settings = make_settings(database_url)
    async with running_app(settings) as app:
        request = await app.service.request(RESTART, by=ALICE, via="console", origin=CONSOLE)
        app.sandbox.clear_requests()  # type: ignore[attr-defined]  # the dry run its card's change came from
        await app.db.write(lambda uow: uow.connection.execute(sa.text("DELETE FROM chain_head")))
        with pytest.raises(SignoffError) as refused:
            await app.service.sign(request.id, by=BOB, via="console")
        assert "chain_head" in refused.value.message and "audit verify" in refused.value.message
        await app.settle()
        assert [r for r in app.sandbox.requests if r[0] == "PATCH"] == []  # type: ignore[attr-defined]
        assert (await app.service.get(request.id)).status is RequestStatus.pending
    code, text = await _verify(settings)
    assert code == 1 and "head" in text
