"""CEF records: what would break a syslog line or a field is escaped; severities follow the event type."""

from __future__ import annotations

from bot.audit_export import cef_line, jsonl_line

EVENT = {"seq": 7, "at": "2026-12-04T10:02:00.000000Z", "type": "failed", "status": "failed",
         "title": "R-3 failed | really", "detail": "key=value\\path\nsecond line", "actor": "signoff",
         "actor_role": "system", "request_id": "R-3", "incident_id": None, "prev_hash": "a" * 64, "hash": "b" * 64}


def test_cef_escapes_pipes_in_the_header_and_equals_backslashes_newlines_in_values() -> None:
    line = cef_line(EVENT)
    assert "\n" not in line and "\r" not in line
    assert line.startswith("CEF:0|signoff|signoff|1|failed|")
    assert r"|R-3 failed \| really|7|" in line  # a pipe in the name is escaped; failures stand out
    assert r"msg=key\=value\\path\nsecond line cn1Label=seq" in line
    assert "rt=1796378520000 " in line  # epoch milliseconds
    assert "cs2Label=incident cs2= " in line and "cs5Label" not in line


def test_jsonl_is_one_compact_line_keeping_unicode() -> None:
    line = jsonl_line({**EVENT, "title": "R-3 ✅"})
    assert "\n" not in line and "✅" in line and ", " not in line


def test_what_a_terminal_would_obey_is_escaped_and_parses_back_to_the_same_text() -> None:
    import json

    title = "evil\u202egnp.exe \x1b[31m\u0085"
    line = jsonl_line({**EVENT, "title": title})
    assert "\u202e" not in line and "\x1b" not in line and "\x85" not in line
    assert json.loads(line)["title"] == title  # the hashed text is unchanged
    cef = cef_line({**EVENT, "title": title, "detail": title})
    assert "\u202e" not in cef and "\x1b" not in cef
    assert r"evil\\u202egnp.exe \\x1b[31m" in cef  # the escape's backslash escaped as CEF wants
