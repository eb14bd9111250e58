"""The Slack app manifest in the repository declares what the adapter relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML comes with the kubernetes client

MANIFEST = Path(__file__).resolve().parents[2] / "slack-app-manifest.yaml"


def test_manifest_declares_the_command_events_scopes_and_socket_mode() -> None:
    manifest: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    features, settings = manifest["features"], manifest["settings"]
    assert [c["command"] for c in features["slash_commands"]] == ["/signoff"]
    assert {"message.channels", "reaction_added"} <= set(settings["event_subscriptions"]["bot_events"])
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # commands: /signoff; chat:write: cards, updates, thread and ephemeral messages;
    # channels:history: message.channels; reactions:read: reaction_added.
    assert {"commands", "chat:write", "channels:history", "reactions:read"} <= scopes
    assert len(manifest["display_information"]["description"]) <= 140
    assert 175 <= len(manifest["display_information"]["long_description"]) <= 4000
