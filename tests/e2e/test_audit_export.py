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


def _export(tmp_path: Path, path: Path, *extra: str, env: dict[str, str] | None = None) -> Path:
    target = tmp_path / f"chain{'-'.join(extra)}.jsonl"
    result = signoff("audit", "export", *extra, env={"SIGNOFF_DATABASE_URL": sqlite_url(path), **(env or {})},
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    target.write_text(result.stdout)
    return target


def test_an_export_verifies_offline_and_a_tampered_one_names_its_first_bad_event(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _make_history(path)
    exported = _export(tmp_path, path)
    path.unlink()  # offline: no database at all
    ok = signoff("audit", "verify", "--file", str(exported), cwd=tmp_path,
                 env={"SIGNOFF_DATABASE_URL": sqlite_url(tmp_path / "absent" / "none.db")})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact" in ok.stdout and not (tmp_path / "absent").exists()

    lines = exported.read_text().splitlines()
    event = json.loads(lines[3])
    event["title"] = event["title"].replace("alice", "mallory")  # altered, hash left as it was
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join([*lines[:3], json.dumps(event), *lines[4:]]) + "\n")
    bad = signoff("audit", "verify", "--file", str(tampered), cwd=tmp_path)
    assert bad.returncode == 1 and "broken at event 4" in bad.stdout, bad.stdout + bad.stderr

    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text("\n".join([*lines[:5], *lines[6:]]) + "\n")
    gap = signoff("audit", "verify", "--file", str(dropped), cwd=tmp_path)
    assert gap.returncode == 1 and "event 7" in gap.stdout


def test_a_partial_export_verifies_from_where_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _make_history(path)
    later = _export(tmp_path, path, "--after", "4")
    result = signoff("audit", "verify", "--file", str(later), cwd=tmp_path)
    assert result.returncode == 0 and "events 5–" in result.stdout, result.stdout + result.stderr


def test_an_export_made_under_a_key_needs_the_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    key = {"SIGNOFF_AUDIT_KEY": "k" * 32}

    async def make() -> None:
        settings = make_settings(sqlite_url(path), SIGNOFF_AUDIT_KEY="k" * 32)
        async with running_app(settings) as app:
            request = await app.service.request("cordon node-1", by=Person(name="alice"), via="console")
            await app.service.sign(request.id, by=Person(name="bob"), via="console")
    asyncio.run(make())
    exported = _export(tmp_path, path, env=key)
    assert signoff("audit", "verify", "--file", str(exported), env=key, cwd=tmp_path).returncode == 0
    without = signoff("audit", "verify", "--file", str(exported), cwd=tmp_path)
    assert without.returncode == 1 and "broken at event" in without.stdout


def test_a_file_that_is_not_an_export_exits_2_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _make_history(path)
    lines = _export(tmp_path, path).read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*lines[:2], "{not json", *lines[2:]]) + "\n")
    result = signoff("audit", "verify", "--file", str(broken), cwd=tmp_path)
    assert result.returncode == 2 and "line 3 is not JSON" in result.stderr, result.stderr
    missing = signoff("audit", "verify", "--file", str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    shape = tmp_path / "shape.jsonl"
    shape.write_text('{"seq": 1}\n')
    wrong = signoff("audit", "verify", "--file", str(shape), cwd=tmp_path)
    assert wrong.returncode == 2 and "line 1 is not an exported event" in wrong.stderr
