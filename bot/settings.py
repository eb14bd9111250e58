"""Settings: the only place that reads the environment (and `.env`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import structlog
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.db.urls import url_passwords, url_problem
from core.domain.policy import Policy
from core.domain.policy_file import parse_policy
from core.errors import SignoffError

DEFAULT_POLICY_FILE = "signoff.toml"
# Tokens signoff checks itself: long enough not to be guessed, and long enough for the log masker to recognise.
MIN_TOKEN_LENGTH = 16

log = structlog.get_logger(__name__)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(default="sqlite+aiosqlite:///signoff.db", alias="SIGNOFF_DATABASE_URL")
    policy_path: str | None = Field(default=None, alias="SIGNOFF_POLICY")
    cluster: Literal["kubeconfig", "sandbox"] = Field(default="kubeconfig", alias="SIGNOFF_CLUSTER")
    api_token: SecretStr | None = Field(default=None, alias="SIGNOFF_API_TOKEN")
    http_host: str = Field(default="0.0.0.0", alias="SIGNOFF_HTTP_HOST")
    http_port: int | None = Field(default=None, alias="SIGNOFF_HTTP_PORT")
    port: int | None = Field(default=None, alias="PORT")

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    slack_channel: str | None = Field(default=None, alias="SLACK_CHANNEL")

    discord_bot_token: SecretStr | None = Field(default=None, alias="DISCORD_BOT_TOKEN")
    discord_channel_id: str | None = Field(default=None, alias="DISCORD_CHANNEL_ID")
    discord_guild_id: str | None = Field(default=None, alias="DISCORD_GUILD_ID")
    discord_api_url: str = Field(default="https://discord.com/api/v10", alias="DISCORD_API_URL")
    discord_gateway_url: str = Field(default="wss://gateway.discord.gg", alias="DISCORD_GATEWAY_URL")

    llm_url: str | None = Field(default=None, alias="SIGNOFF_LLM_URL")
    llm_model: str | None = Field(default=None, alias="SIGNOFF_LLM_MODEL")
    llm_api_key: SecretStr | None = Field(default=None, alias="SIGNOFF_LLM_API_KEY")
    audit_key: SecretStr | None = Field(default=None, alias="SIGNOFF_AUDIT_KEY")
    audit_webhook: str | None = Field(default=None, alias="SIGNOFF_AUDIT_WEBHOOK")
    audit_webhook_token: SecretStr | None = Field(default=None, alias="SIGNOFF_AUDIT_WEBHOOK_TOKEN")
    alertmanager_url: str | None = Field(default=None, alias="SIGNOFF_ALERTMANAGER_URL")  # [alertmanager] silence

    # The web view (/ui/): OIDC sign-in, and the key that signs its sessions (random per process when unset).
    oidc_issuer: str | None = Field(default=None, alias="SIGNOFF_OIDC_ISSUER")
    oidc_client_id: str | None = Field(default=None, alias="SIGNOFF_OIDC_CLIENT_ID")
    oidc_client_secret: SecretStr | None = Field(default=None, alias="SIGNOFF_OIDC_CLIENT_SECRET")
    session_key: SecretStr | None = Field(default=None, alias="SIGNOFF_SESSION_KEY")

    log_format: Literal["console", "json"] | None = Field(default=None, alias="SIGNOFF_LOG_FORMAT")
    log_level: str = Field(default="info", alias="SIGNOFF_LOG_LEVEL")

    # Not part of the public contract: knobs for tests, benches and unusual deployments.
    sweep_interval_s: float = Field(default=5.0, alias="SIGNOFF_SWEEP_INTERVAL")
    execution_lease_s: float = Field(default=120.0, alias="SIGNOFF_EXECUTION_LEASE")
    kube_timeout_s: float = Field(default=10.0, alias="SIGNOFF_KUBE_TIMEOUT")
    chat_timeout_s: float = Field(default=10.0, alias="SIGNOFF_CHAT_TIMEOUT")

    @field_validator(
        "api_token", "slack_bot_token", "slack_signing_secret", "slack_app_token", "discord_bot_token",
        "llm_api_key", "audit_key", "audit_webhook", "audit_webhook_token",
        "policy_path", "slack_channel", "discord_channel_id", "discord_guild_id", "llm_url",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters long (this one has "
                             f"{len(value.get_secret_value())}); generate one with `openssl rand -hex 32`")
        return value

    @field_validator("database_url")
    @classmethod
    def _a_database_url(cls, value: str) -> str:
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("oidc_issuer", "oidc_client_id", "oidc_client_secret", "session_key", mode="before")
    @classmethod
    def _blank_web_setting_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def oidc_enabled(self) -> bool:
        return self.oidc_issuer is not None and self.oidc_client_id is not None

    @property
    def listen_port(self) -> int:
        return self.http_port or self.port or 3000

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def discord_enabled(self) -> bool:
        return self.discord_bot_token is not None

    @property
    def effective_log_format(self) -> str:
        if self.log_format:
            return self.log_format
        return "console" if sys.stderr.isatty() else "json"

    def policy_file(self) -> Path | None:
        if self.policy_path:
            return Path(self.policy_path)
        default = Path(DEFAULT_POLICY_FILE)
        return default if default.exists() else None

    def load_policy(self) -> Policy:
        path = self.policy_file()
        if path is None:
            return Policy()
        try:
            text = path.read_text(encoding="utf-8-sig")  # a byte order mark is not part of the TOML
        except OSError as exc:
            raise SignoffError(f"{path}: cannot read the policy file ({exc.strerror or exc}); "
                               "fix SIGNOFF_POLICY or create the file.") from None
        policy = parse_policy(text, str(path))
        warning = policy.open_warning()
        if warning is not None:
            log.warning("policy.anyone_may_sign", source=str(path), warning=warning)
        return policy

    def secrets(self) -> list[str]:
        """Every secret value, so tests and log filters can make sure none leaks."""
        values = [self.api_token, self.slack_bot_token, self.slack_signing_secret, self.slack_app_token,
                  self.discord_bot_token, self.llm_api_key, self.audit_key, self.audit_webhook_token,
                  self.oidc_client_secret, self.session_key]
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        urls = (self.database_url, self.slack_api_url, self.llm_url or "", self.audit_webhook or "",
                self.alertmanager_url or "")
        return found + [password for url in urls for password in url_passwords(url)]

    @property
    def audit_key_bytes(self) -> bytes | None:
        """The key that makes the timeline chain an HMAC (None: plain SHA-256)."""
        return self.audit_key.get_secret_value().encode("utf-8") if self.audit_key is not None else None

    def missing_for_run(self) -> str | None:
        if self.slack_enabled or self.discord_enabled or self.api_token is not None:
            return None
        return ("signoff run needs something to serve: set SLACK_BOT_TOKEN (with SLACK_SIGNING_SECRET, or "
                "SLACK_APP_TOKEN for Socket Mode), or DISCORD_BOT_TOKEN, or SIGNOFF_API_TOKEN for the HTTP API.")

    def slack_problem(self) -> str | None:
        if not self.slack_enabled:
            return None
        if self.slack_app_token is None and self.slack_signing_secret is None:
            return ("SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN "
                    "(Socket Mode) is: set one of them.")
        return None
