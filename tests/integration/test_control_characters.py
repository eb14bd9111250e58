"""Control and direction characters (issue 18, item 8): refused in names, escaped in reasons and comments
wherever text reaches a terminal or a chat.

`requested_by` `"evil\\u001b[31mred\\nline2"` used to make `signoff timeline` print a raw escape sequence and a
forged second line; U+202E and a name of spaces alone were accepted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.bootstrap import App
from core.chat.cards import request_card
from core.chat.commands import ChatContext
from core.domain.approvals import Place
from core.domain.policy_file import PolicyFileError, parse_policy
from tests.integration.test_learning import TOKEN, alert_app

__all__ = ["alert_app"]

ROOT = Path(__file__).resolve().parents[2]
EVIL = "evil\u001b[31mred\nline2"
CONSOLE = Place(platform="console", channel="console")


async def post_request(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
        url.replace("/api/v1/alerts", "/api/v1/requests"), data=json.dumps(body),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("name", [EVIL, "mallory\u202eiloh", "   ", "\t\u00a0", "zero\u200bwidth", "bell\x07"])
async def test_a_name_with_control_or_direction_characters_is_refused(
    alert_app: tuple[App, str], name: str,
) -> None:
    app, url = alert_app
    status, body = await post_request(url, {"action": "cordon node-1", "requested_by": name})
    assert (status, body["error"]) == (422, "invalid_name"), body
    assert "requested_by" in body["message"] and "like `alice`" in body["message"]
    assert "\u202e" not in body["message"] and "\x1b" not in body["message"]
    assert await app.db.read(lambda uow: uow.requests.counts()) == {}


def test_a_policy_person_name_with_a_direction_character_is_refused() -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy('[people."mallory\u202eiloh"]\ngroups = ["sre"]\n', "signoff.toml")
    assert "people." in caught.value.message and "U+202E" in caught.value.message


async def test_reasons_and_comments_are_escaped_in_the_timeline_and_on_cards(
    alert_app: tuple[App, str], tmp_path: Path,
) -> None:
    app, url = alert_app
    if not app.settings.database_url.startswith("sqlite"):
        pytest.skip("`signoff timeline` reads the SQLite file here; the escaping does not depend on the database")
    status, created = await post_request(url, {"action": "cordon node-1", "requested_by": "assistant",
                                               "reason": "db \u202eslow\u001b[2J\nFORGED line"})
    assert status == 201, created
    request_id = created["id"]
    reply = await app.chat.handle(f'approve {request_id} comment="ok\u001b[31m\u202e"',
                                  ChatContext(platform="console", account="bob", place=CONSOLE))
    assert reply.ok, reply.text
    # Cards (Slack, Discord and the console render them): no raw control or direction character anywhere.
    card = request_card(await app.service.get(request_id), app.clock.now())
    shown = "\n".join(f"{f.label}: {f.value}" for f in card.fields)
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "\\x1b[2J" in shown and "\\u202e" in shown
    # The terminal: `signoff timeline` prints escapes, and one line per event.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_", "DISCORD_"))}
    env.update({"PYTHONPATH": str(ROOT), "SIGNOFF_DATABASE_URL": app.settings.database_url,
                "SIGNOFF_LOG_FORMAT": "json"})
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot", "timeline", request_id], capture_output=True, text=True,
        env=env, cwd=tmp_path, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out and "\u202e" not in out, out
    signed = [line for line in out.splitlines() if " signed" in line]
    assert len(signed) == 1 and "ok\\x1b[31m\\u202e" in signed[0], out
    assert all(line.startswith(("#", "Timeline of", "last hash")) for line in out.splitlines()), out
