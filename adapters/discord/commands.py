"""The `/signoff` application-command group: every chat command of docs/design.md §4 as a subcommand.

Each subcommand's options arrive typed (ids, risk levels, scores: `options.py`'s transformers) and map
straight to a core command (never to text), handed to `run`, which answers the interaction (defer, then
follow up) in the client's supervised task group. An option value that does not read is answered the same
way, with what would work (`on_error`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import discord
import structlog
from discord import app_commands

from adapters.discord.options import (
    BadOption,
    IncidentIdOption,
    RequestIdOption,
    RiskOption,
    ScoreOption,
    SubjectOption,
)
from core.chat import breakglass_commands as glass
from core.chat import parser
from core.chat.commands import Cancel, Command, Help, Incidents, List, Malformed, Playbooks, Resolve, Show, Timeline
from core.domain.ids import IncidentId, RequestId, Subject
from core.domain.policy import Risk

log = structlog.get_logger(__name__)

Runner = Callable[[discord.Interaction[Any], Command], None]


class SignoffGroup(app_commands.Group):
    def __init__(self, run: Runner) -> None:
        # Cards open threads in a guild channel, so the commands are offered in guilds only.
        super().__init__(name="signoff", description="Multi-party approval of Kubernetes operations",
                         guild_only=True)
        self._signoff_run = run

    @app_commands.command(name="request", description="Ask for an operation; approvers sign it on the card")
    @app_commands.describe(
        action="e.g. rollout restart deployment/api -n prod",
        risk="Your estimate; the policy may raise it",
        incident="The incident behind it, e.g. INC-7",
        reason="Why it is needed",
        cluster="The cluster, e.g. eu-1 (none: the default one)",
    )
    async def request(
        self, interaction: discord.Interaction[Any], action: str,
        risk: app_commands.Transform[Risk, RiskOption] | None = None,
        incident: app_commands.Transform[IncidentId, IncidentIdOption] | None = None, reason: str | None = None,
        cluster: str | None = None,
    ) -> None:
        self._signoff_run(interaction, parser.from_options(action, risk, incident, reason, cluster))

    @app_commands.command(name="status", description="Show a request's state")
    @app_commands.rename(subject="id")
    @app_commands.describe(subject="A request id such as R-42")
    async def status(self, interaction: discord.Interaction[Any],
                     subject: app_commands.Transform[RequestId, RequestIdOption]) -> None:
        self._signoff_run(interaction, Show(request=subject))

    @app_commands.command(name="timeline", description="The hash-chained history of a request or incident")
    @app_commands.rename(subject="id")
    @app_commands.describe(subject="A request id (R-42) or an incident id (INC-7)")
    async def timeline(self, interaction: discord.Interaction[Any],
                       subject: app_commands.Transform[Subject, SubjectOption]) -> None:
        self._signoff_run(interaction, Timeline(subject=subject))

    @app_commands.command(name="list", description="Pending requests")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        self._signoff_run(interaction, List())

    @app_commands.command(name="cancel", description="Cancel your own pending request")
    @app_commands.rename(subject="id")
    @app_commands.describe(subject="A request id such as R-42")
    async def cancel(self, interaction: discord.Interaction[Any],
                     subject: app_commands.Transform[RequestId, RequestIdOption]) -> None:
        self._signoff_run(interaction, Cancel(request=subject))

    @app_commands.command(name="resolve", description="Resolve an incident and rate how well the fix worked")
    @app_commands.describe(incident="An incident id such as INC-7", score="Effectiveness, 1 (none) to 5 (fixed it)")
    async def resolve(
        self, interaction: discord.Interaction[Any], incident: app_commands.Transform[IncidentId, IncidentIdOption],
        score: app_commands.Transform[int, ScoreOption],
    ) -> None:
        self._signoff_run(interaction, Resolve(incident=incident, score=score))

    @app_commands.command(name="incidents", description="Open incidents")
    async def incidents(self, interaction: discord.Interaction[Any]) -> None:
        self._signoff_run(interaction, Incidents())

    @app_commands.command(name="playbooks", description="Playbooks learned from resolved incidents")
    async def playbooks(self, interaction: discord.Interaction[Any]) -> None:
        self._signoff_run(interaction, Playbooks())

    @app_commands.command(name="breakglass", description="Run a pending request on your signature alone "
                                                         "(no id: the open reviews)")
    @app_commands.rename(subject="id")
    @app_commands.describe(subject="A pending request id such as R-42", reason="Why it cannot wait")
    async def breakglass(self, interaction: discord.Interaction[Any], subject: str | None = None,
                         reason: str | None = None) -> None:
        self._signoff_run(interaction, glass.from_options("breakglass", subject, reason))

    @app_commands.command(name="countersign", description="Countersign a break glass you reviewed")
    @app_commands.rename(subject="id")
    @app_commands.describe(subject="The request id such as R-42")
    async def countersign(self, interaction: discord.Interaction[Any], subject: str) -> None:
        self._signoff_run(interaction, glass.from_options("countersign", subject))

    @app_commands.command(name="dispute", description="Dispute a break glass, with the reason")
    @app_commands.rename(subject="id")
    @app_commands.describe(subject="The request id such as R-42", reason="Why it was not justified")
    async def dispute(self, interaction: discord.Interaction[Any], subject: str, reason: str) -> None:
        self._signoff_run(interaction, glass.from_options("dispute", subject, reason))

    @app_commands.command(name="help", description="How signoff works")
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        self._signoff_run(interaction, Help())

    async def on_error(self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
        """An option value that does not read: told to the person like any refusal, with what would work."""
        if isinstance(error, BadOption):
            log.info("discord.bad_option", command=interaction.command.name if interaction.command else None)
            self._signoff_run(interaction, Malformed(message=error.message))


def canonical_commands(payloads: list[dict[str, Any]]) -> list[Any]:
    """What matters of registered commands, so a restart re-syncs only when the commands changed.

    Discord adds ids, versions and defaults to what it stores; comparing only the fields we send
    (with Discord's defaults filled in) avoids a needless bulk overwrite on every start.
    """
    return sorted((_canonical(p) for p in payloads), key=repr)


def _canonical(payload: dict[str, Any]) -> Any:
    return {
        "name": payload.get("name"),
        "description": payload.get("description") or "",
        "type": int(payload.get("type") or 1),
        "required": bool(payload.get("required", False)),
        "autocomplete": bool(payload.get("autocomplete", False)),
        "choices": sorted(((c.get("name"), c.get("value")) for c in payload.get("choices") or []), key=repr),
        "min_value": payload.get("min_value"),
        "max_value": payload.get("max_value"),
        "options": [_canonical(o) for o in payload.get("options") or []],
    }
