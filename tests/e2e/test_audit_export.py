"""`signoff audit export` as a SIEM pipeline runs it: a real subprocess reading a real SQLite file."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

from core.domain.events import GENESIS_HASH, chain_hash
from core.domain.policy import Person
from testkit.support import make_settings, running_app, sqlite_url
from tests.e2e.test_cli import signoff

REASON = "p99 above 2s since 10:02"


def _make_history(path: Path) -> None:
    async def make() -> None:
        async with running_app(make_settings(sqlite_url(path))) as app:
            alice, bob = Person(name="alice"), Person(name="bob")
            for action in ("rollout restart deployment/api -n prod", "cordon node-1", "scale deployment/web "
                           "--replicas=3 -n staging"):
                request = await app.service.request(action, by=alice, via="console", reason=REASON)
                await app.service.sign(request.id, by=bob, via="console")
            await app.settle()
    asyncio.run(make())


def test_export_is_the_chain_as_json_lines_that_verify_on_their_own(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _make_history(path)
    env = {"SIGNOFF_DATABASE_URL": sqlite_url(path)}
    result = signoff("audit", "export", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) > 10
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["prev_hash"] == GENESIS_HASH
    for before, event in itertools.pairwise(events):
        assert event["prev_hash"] == before["hash"]
    for event in events:  # each line is the body its hash covers
        assert chain_hash(event["prev_hash"], {k: v for k, v in event.items() if k != "hash"}) == event["hash"]
    assert {"requested", "signed", "executed"} <= {e["type"] for e in events}

    later = signoff("audit", "export", "--after", "5", env=env, cwd=tmp_path)
    assert later.returncode == 0
    assert [json.loads(line) for line in later.stdout.splitlines()] == events[5:]


def test_export_as_cef_escapes_what_would_break_a_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _make_history(path)
    result = signoff("audit", "export", "--format", "cef", env={"SIGNOFF_DATABASE_URL": sqlite_url(path)},
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("CEF:0|signoff|signoff|1|") for line in lines)
    first = lines[0]
    header = first.split("|")
    assert header[4] == "requested" and header[6].isdigit()
    assert "cn1Label=seq cn1=1 " in first and f"cs3Label=prev_hash cs3={GENESIS_HASH}" in first
    assert len(lines) == len(signoff("audit", "export", env={"SIGNOFF_DATABASE_URL": sqlite_url(path)})
                             .stdout.splitlines())
    refused = signoff("audit", "export", "--format", "xml", env={"SIGNOFF_DATABASE_URL": sqlite_url(path)})
    assert refused.returncode == 2 and "jsonl" in refused.stderr
