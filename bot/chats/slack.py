"""Slack in `signoff run` (and in the tests and benches that run it the same way)."""

from __future__ import annotations

from aiohttp import web
from pydantic import SecretStr

from adapters.db.dedupe import DatabaseDeliveries
from adapters.slack.app import SlackAdapter, SlackConfig
from bot.bootstrap import App
from bot.settings import Settings
from core.errors import SignoffError


def slack_config(settings: Settings) -> SlackConfig:
    """SLACK_* settings as the adapter's config; refuses settings that cannot start Slack."""
    if settings.slack_bot_token is None:
        raise SignoffError("Slack needs SLACK_BOT_TOKEN.")
    problem = settings.slack_problem()
    if problem:
        raise SignoffError(problem)

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    return SlackConfig(
        bot_token=settings.slack_bot_token.get_secret_value(),
        api_url=settings.slack_api_url,
        signing_secret=secret(settings.slack_signing_secret),
        app_token=secret(settings.slack_app_token),
        channel=settings.slack_channel,
        timeout_s=max(1, round(settings.chat_timeout_s)),
    )


def attach_slack(app: App, http: web.Application | None = None) -> SlackAdapter:
    """Slack on a bootstrapped App: registers the outbox gateway (SLACK_CHANNEL is the channel for API and
    alert requests) and in HTTP mode (no SLACK_APP_TOKEN) mounts POST /slack/events on `http`.

    Enter `adapter.running()` to authenticate and start receiving.
    """
    # Duplicates (a Slack retry, a replayed command) are recognised in the database, whichever replica gets them.
    adapter = SlackAdapter(app.chat, slack_config(app.settings), seen=DatabaseDeliveries(app.db, app.clock))
    adapter.attach(app.gateways, http)
    return adapter
