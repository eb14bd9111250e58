"""Turning on or rotating `SIGNOFF_AUDIT_KEY` starts a key epoch (issue 18, defect 4).

A database made without a key (or with key A) gets the key (or key B), `signoff audit rekey` seals the chain so far
with an `audit.key_changed` event, and from then on `audit verify` checks the whole chain with the new key alone,
still naming tampering before and after the key change; requests made before it still execute.
The `signoff` commands run as real subprocesses; the service runs in-process on the same database.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from adapters.db.database import Database
from core.domain.approvals import Place, RequestStatus
from core.domain.events import EventType
from core.domain.policy import Person
from testkit.support import make_settings, running_app

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = Place(platform="console", channel="console")
ALICE, BOB, CAROL = Person(name="alice"), Person(name="bob"), Person(name="carol")
QUORUM_2 = "[risk.medium]\nquorum = 2\napprovers = [\"*\"]\n"
KEY_A, KEY_B = "a" * 32, "b" * 32


def _signoff(url: str, *args: str, key: str | None = None, previous: str | None = None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_", "DISCORD_"))}
    env.update({"PYTHONPATH": str(ROOT), "SIGNOFF_DATABASE_URL": url})
    if key is not None:
        env["SIGNOFF_AUDIT_KEY"] = key
    if previous is not None:
        env["SIGNOFF_AUDIT_PREVIOUS_KEY"] = previous
    done = subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


async def signoff(url: str, *args: str, **keys: str | None) -> tuple[int, str]:
    return await asyncio.to_thread(_signoff, url, *args, **keys)


async def _history(url: str, key: str | None) -> tuple[str, str]:
    """A succeeded request, then a pending one with one of its two signatures; returns their ids."""
    settings = make_settings(url, **({"SIGNOFF_AUDIT_KEY": key} if key else {}))
    async with running_app(settings, policy=QUORUM_2) as app:
        done = await app.service.request("rollout restart deployment/api -n prod", by=ALICE, via="console",
                                         origin=CONSOLE)
        await app.service.sign(done.id, by=BOB, via="console")
        await app.service.sign(done.id, by=CAROL, via="console")
        await app.settle()
        assert (await app.service.get(done.id)).status is RequestStatus.succeeded
        pending = await app.service.request("scale deployment/web -n prod --replicas=3", by=ALICE, via="console",
                                            origin=CONSOLE)
        await app.service.sign(pending.id, by=BOB, via="console")
    return done.id, pending.id


async def _finish(url: str, key: str, request_id: str) -> RequestStatus:
    async with running_app(make_settings(url, SIGNOFF_AUDIT_KEY=key), policy=QUORUM_2) as app:
        await app.service.sign(request_id, by=CAROL, via="console")
        await app.settle()
        return (await app.service.get(request_id)).status


async def _sql(url: str, statement: str, **params: Any) -> None:
    db = Database(url)
    try:
        await db.write(lambda uow: uow.connection.execute(sa.text(statement), params))
    finally:
        await db.dispose()


async def _key_change_seq(url: str) -> int:
    (seq,) = await _key_change_seqs(url)
    return seq


async def _key_change_seqs(url: str) -> list[int]:
    db = Database(url)
    try:
        return [int(seq) for seq in await db.read(lambda uow: uow.connection.execute(sa.text(
            "SELECT seq FROM timeline WHERE type = :t ORDER BY seq"), {"t": EventType.key_changed.value}).scalars())]
    finally:
        await db.dispose()


async def test_turning_the_key_on_then_rekey_keeps_the_chain_verifiable(database_url: str) -> None:
    _, pending = await _history(database_url, key=None)
    code, text = await signoff(database_url, "audit", "verify", key=KEY_A)
    assert code == 1 and "signoff audit rekey" in text, text

    code, text = await signoff(database_url, "audit", "rekey", key=KEY_A)
    assert code == 0 and "replaces key none" in text, text
    code, text = await signoff(database_url, "audit", "verify", key=KEY_A)
    assert code == 0 and "intact" in text, text
    # Re-running it changes nothing.
    code, text = await signoff(database_url, "audit", "rekey", key=KEY_A)
    assert code == 0 and "nothing to do" in text, text

    # A request made before the key executes under it, and the chain still verifies.
    assert await _finish(database_url, KEY_A, pending) is RequestStatus.succeeded
    code, text = await signoff(database_url, "audit", "verify", key=KEY_A)
    assert code == 0 and "intact" in text, text

    # Tampering after the key change is named.
    rekeyed = await _key_change_seq(database_url)
    await _sql(database_url, "UPDATE timeline SET actor = 'mallory' WHERE seq = :s", s=rekeyed + 1)
    code, text = await signoff(database_url, "audit", "verify", key=KEY_A)
    assert code == 1 and f"broken at event {rekeyed + 1}" in text, text


async def test_tampering_before_the_key_change_is_still_named(database_url: str) -> None:
    await _history(database_url, key=None)
    assert (await signoff(database_url, "audit", "rekey", key=KEY_A))[0] == 0
    # The keyless events are still checked one by one.
    await _sql(database_url, "UPDATE timeline SET actor = 'mallory' WHERE seq = 2")
    code, text = await signoff(database_url, "audit", "verify", key=KEY_A)
    assert code == 1 and "broken at event 2" in text, text


async def test_rotating_the_key_from_a_to_b(database_url: str) -> None:
    _, pending = await _history(database_url, key=KEY_A)
    assert (await signoff(database_url, "audit", "verify", key=KEY_A))[0] == 0
    # Without the old key the chain so far cannot be checked, so it is not sealed.
    code, text = await signoff(database_url, "audit", "rekey", key=KEY_B)
    assert code == 1 and "SIGNOFF_AUDIT_PREVIOUS_KEY" in text, text
    code, text = await signoff(database_url, "audit", "rekey", key=KEY_B, previous=KEY_A)
    assert code == 0, text
    # Verified with key B alone: the key change vouches for the epoch of key A.
    code, text = await signoff(database_url, "audit", "verify", key=KEY_B)
    assert code == 0 and "intact" in text, text
    assert await _finish(database_url, KEY_B, pending) is RequestStatus.succeeded
    assert (await signoff(database_url, "audit", "verify", key=KEY_B))[0] == 0

    # An edit in key A's epoch (its hash cannot be recomputed without A, nor checked without it) breaks the seal.
    await _sql(database_url, "UPDATE timeline SET actor = 'mallory' WHERE seq = 2")
    rekeyed = await _key_change_seq(database_url)
    code, text = await signoff(database_url, "audit", "verify", key=KEY_B)
    assert code == 1 and f"broken at event {rekeyed}" in text and "seal" in text, text
    # With key A the edit is named at its own event.
    code, text = await signoff(database_url, "audit", "verify", key=KEY_A)
    assert code == 1 and "broken at event 2" in text, text


async def test_a_rekey_refuses_to_seal_a_broken_chain(database_url: str) -> None:
    await _history(database_url, key=None)
    await _sql(database_url, "UPDATE timeline SET actor = 'mallory' WHERE seq = 2")
    code, text = await signoff(database_url, "audit", "rekey", key=KEY_A)
    assert code == 1 and "refusing" in text and "event 2" in text, text


async def test_turning_the_key_on_seals_the_chain_at_start_and_a_rotation_needs_the_previous_key(
        database_url: str) -> None:
    # Started with the key for the first time, the service seals the chain so far (verified under no key) as
    # `signoff audit rekey` would, and goes on: the pending request made before the key still runs.
    await _history(database_url, key=None)
    code, text = await signoff(database_url, "console", key=KEY_A)
    assert code == 0, text
    code, text = await signoff(database_url, "audit", "verify", key=KEY_A)
    assert code == 0 and "intact" in text, text
    first_change = await _key_change_seq(database_url)
    # A rotation to B without the previous key: the service does not start (it could not vouch for A's events).
    code, text = await signoff(database_url, "console", key=KEY_B)
    assert code == 2 and "signoff audit rekey" in text, text
    # The key removed without a key change: refused too.
    code, text = await signoff(database_url, "console")
    assert code == 2 and "signoff audit rekey" in text, text
    # With the previous key given, the rotation is sealed at start as well.
    code, text = await signoff(database_url, "console", key=KEY_B, previous=KEY_A)
    assert code == 0, text
    assert len(changes := await _key_change_seqs(database_url)) == 2 and changes[1] > first_change
    code, text = await signoff(database_url, "audit", "verify", key=KEY_B)
    assert code == 0 and "intact" in text, text


async def test_a_damaged_chain_is_not_sealed_at_start(database_url: str) -> None:
    await _history(database_url, key=None)
    await _sql(database_url, "UPDATE timeline SET actor = 'mallory' WHERE seq = 2")
    code, text = await signoff(database_url, "console", key=KEY_A)
    assert code == 2 and "signoff audit rekey" in text, text
