"""`/signoff` options as typed values, the way discord.py intends: `app_commands.Transformer`s.

Discord sends every option as a string or an integer; these turn them into the core's types (request and
incident ids, risk levels, scores) before the command's callback runs, and describe the option to Discord
(its type, choices and bounds) so what is registered stays the same. A value that does not read raises
`BadOption` with the sentence the person is told (what would work); the command group answers with it.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from core.domain.ids import IncidentId, RequestId, Subject, parse_incident_id, parse_request_id, parse_subject
from core.domain.policy import Risk
from core.errors import SignoffError

RISK_CHOICES = [app_commands.Choice(name=str(r), value=str(r)) for r in Risk]
SCORE_MIN, SCORE_MAX = 1, 5


class BadOption(app_commands.AppCommandError):
    """An option value that does not read; `message` says what would."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Text(app_commands.Transformer):
    """A string option read by one of the core's parsers; its refusal becomes `BadOption`."""

    def read(self, value: str) -> Any:
        raise NotImplementedError

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> Any:
        try:
            return self.read(str(value))
        except SignoffError as exc:
            raise BadOption(exc.message) from None


class RequestIdOption(_Text):
    def read(self, value: str) -> RequestId:
        return parse_request_id(value)


class SubjectOption(_Text):
    """A request (`R-42`, `42`) or an incident (`INC-7`)."""

    def read(self, value: str) -> Subject:
        return parse_subject(value)


class IncidentIdOption(_Text):
    def read(self, value: str) -> IncidentId:
        return parse_incident_id(value)


class RiskOption(_Text):
    @property
    def choices(self) -> list[app_commands.Choice[str]]:  # type: ignore[override]
        return RISK_CHOICES

    def read(self, value: str) -> Risk:
        try:
            return Risk(value.strip().lower())
        except ValueError:
            raise BadOption(f"`{value.strip()[:20]}` is not a risk level; use low, medium, high or critical.") \
                from None


class ScoreOption(app_commands.Transformer):
    """How well a fix worked, 1 to 5 (Discord enforces the bounds; a raw value outside them is refused too)."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.integer

    @property
    def min_value(self) -> int:
        return SCORE_MIN

    @property
    def max_value(self) -> int:
        return SCORE_MAX

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and SCORE_MIN <= value <= SCORE_MAX:
            return value
        raise BadOption(f"`{str(value)[:20]}` is not a score; rate the fix {SCORE_MIN} (no help) to {SCORE_MAX} "
                        "(fixed it).")
