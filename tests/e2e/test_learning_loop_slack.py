"""The whole learning loop over Slack's real wire protocol: an Alertmanager alert → the rules track's
proposal card → a signature click → execution → the rating button (4) → the playbook offer in the
thread → a ✅ reaction approves it → the same alert again → the playbook's proposal, with its similarity."""

from __future__ import annotations

import json
from typing import Any

from testkit.fakes.slack import reaction_added_event
from testkit.support.slack import BOB, CAROL, CHANNEL, TEAM_POLICY, buttons, card_text, slack_world

TOKEN = "e2e-api-token-0123456789"


def crashloop(pod: str, fingerprint: str, starts: str) -> dict[str, Any]:
    labels = {"alertname": "KubePodCrashLooping", "namespace": "prod", "pod": pod, "container": "api",
              "severity": "warning", "job": "kube-state-metrics"}
    return {
        "version": "4", "status": "firing", "receiver": "signoff", "groupKey": '{}:{alertname="KubePodCrashLooping"}',
        "groupLabels": {"alertname": "KubePodCrashLooping"}, "commonLabels": labels, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": labels,
                    "annotations": {
                        "summary": "Pod is crash looping.",
                        "description": f"Pod prod/{pod} (api) is in waiting state (reason: CrashLoopBackOff).",
                    },
                    "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                    "fingerprint": fingerprint}],
    }


async def test_alert_to_playbook_and_back_over_slack(sqlite_database_url: str) -> None:
    async with slack_world(sqlite_database_url, policy=TEAM_POLICY, api_token=TOKEN) as world:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

        async def alert(body: dict[str, Any]) -> dict[str, Any]:
            async with world.session.post(world.base_url + "/api/v1/alerts", data=json.dumps(body),
                                          headers=headers) as response:
                assert response.status == 200, await response.text()
                result: dict[str, Any] = (await response.json())["alerts"][0]
                return result

        def api_pod() -> str:
            return sorted(p["metadata"]["name"] for p in world.app.sandbox.objects("pod", "prod", "app=api"))[0]

        first = await alert(crashloop(api_pod(), "fp-1", "2026-11-27T10:00:00Z"))
        assert first["track"] == "rules"
        await world.settle()
        card = world.card(first["request_id"])
        assert "rules track" in card_text(card)

        assert await world.click(BOB, "approve", first["request_id"]) == 200  # medium risk: one signature
        await world.settle()
        thread = world.thread_texts(first["request_id"])
        assert any("succeeded" in text for text in thread)

        rating = next(m for m in world.fake.thread(CHANNEL, card["ts"]) if buttons(m))
        four = next(b for b in buttons(rating) if b["value"].endswith(":4"))
        assert await world.click_button(BOB, rating, four["action_id"], four["value"]) == 200
        await world.settle()
        offer = next(m for m in world.fake.thread(CHANNEL, card["ts"]) if "Playbook PB-1 proposed" in m.get("text", ""))

        # Bob is not in `leads`: his ✅ is refused privately; Carol's approves the playbook.
        assert await world.event(reaction_added_event(BOB, "white_check_mark", CHANNEL, offer["ts"])) == 200
        await world.settle()  # reactions are handled side by side; keep Bob's first so his refusal is about `leads`
        assert any("leads" in text for text in world.private_texts(BOB))
        assert await world.event(reaction_added_event(CAROL, "white_check_mark", CHANNEL, offer["ts"])) == 200
        await world.settle()
        (playbook,) = await world.app.playbooks.all()
        assert playbook.status == "approved"
        assert any("PB-1 approved" in text for text in world.thread_texts(first["request_id"]))

        second = await alert(crashloop(api_pod(), "fp-1", "2026-11-28T09:00:00Z"))
        assert second["track"] == "playbook"
        await world.settle()
        proposal = card_text(world.card(second["request_id"]))
        assert "playbook track" in proposal and "PB-1" in proposal and "similarity" in proposal
