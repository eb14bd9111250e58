"""What a change freeze does to a request being made: one risk level higher, or refused (break glass remains)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from core.domain.calendar import CalendarEvent
from core.domain.freeze import FreezeEffect, FreezeInForce, freeze_in_force
from core.domain.policy import Policy, Risk
from core.errors import ChangeFreeze

# The expanded occurrences of each `ical` freeze, by freeze name (read in the background, never here).
FreezeWindows = Callable[[], dict[str, list[CalendarEvent]]]


def no_windows() -> dict[str, list[CalendarEvent]]:
    return {}


def under_freeze(
    policy: Policy, risk: Risk, command: str, at: datetime, windows: FreezeWindows = no_windows,
) -> tuple[Risk, FreezeInForce | None]:
    """The risk a request made at `at` gets, and the freeze in force; refused when the freeze says so."""
    if not policy.freeze:
        return risk, None
    freeze = freeze_in_force(policy.freeze, at, windows())
    if freeze is None:
        return risk, None
    until = f"{freeze.end.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if freeze.effect is FreezeEffect.refuse:
        raise ChangeFreeze(
            f"`{command}` is refused: the change freeze “{freeze.name}” is in force until {until}. "
            "Ask again after it ends; in an emergency, break glass remains.")
    levels = list(Risk)
    if risk is Risk.critical:
        raise ChangeFreeze(
            f"`{command}` is critical risk and the change freeze “{freeze.name}” (until {until}) raises every "
            "request one level, above critical: it is refused. Ask again after the freeze ends; in an emergency, "
            "break glass remains.")
    return levels[risk.rank + 1], freeze
