"""Slack adapter: slack_bolt listeners (HTTP mode or Socket Mode), Block Kit cards, the outbox gateway."""

from __future__ import annotations

from adapters.slack.app import EVENTS_PATH, SlackAdapter, SlackConfig
from adapters.slack.gateway import SlackGateway

__all__ = ["EVENTS_PATH", "SlackAdapter", "SlackConfig", "SlackGateway"]
