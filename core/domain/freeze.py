"""Change freezes: windows during which a request is one risk level higher, or refused (break glass remains).

A `[[freeze]]` is either one window (`start`/`end`, RFC 3339) or recurring windows from an iCalendar feed
(`ical`). Which freeze is in force at a moment is a pure question of the windows and the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator

from core.domain.calendar import CalendarEvent, happening
from core.domain.text import name_problem


class FreezeEffect(StrEnum):
    raise_risk = "raise"  # one risk level higher; a critical request is refused
    refuse = "refuse"  # refused at once; break glass remains

    @property
    def strictness(self) -> int:
        return 1 if self is FreezeEffect.refuse else 0


class Freeze(BaseModel):
    """A `[[freeze]]` table of the policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    ical: str | None = None
    effect: FreezeEffect = FreezeEffect.raise_risk

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        problem = name_problem(value, "name")
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_kind_of_window(self) -> Freeze:
        if self.ical is not None:
            if self.start is not None or self.end is not None:
                raise ValueError("a freeze is either `start`/`end` or `ical`, not both")
            if not self.ical.strip():
                raise ValueError("`ical` names a file or an http(s) URL of an iCalendar feed")
            return self
        if self.start is None or self.end is None:
            raise ValueError("a freeze needs `start` and `end` (RFC 3339, like \"2026-11-27T00:00:00Z\"), "
                             "or `ical` for recurring windows")
        if self.end <= self.start:
            raise ValueError("`end` must be after `start`")
        return self


class FreezeInForce(BaseModel):
    """The freeze a request was made under, snapshotted onto the request."""

    model_config = ConfigDict(frozen=True)

    name: str
    effect: FreezeEffect
    start: datetime
    end: datetime

    def describe(self) -> str:
        return f"the change freeze “{self.name}” (until {self.end.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"


def freeze_in_force(
    freezes: Iterable[Freeze], at: datetime, windows_of: dict[str, list[CalendarEvent]] | None = None,
) -> FreezeInForce | None:
    """The freeze that applies at `at`: of those on, the strictest (`refuse` over `raise`), then the one that
    ends last. `windows_of` holds the expanded occurrences of each `ical` freeze, by freeze name; a freeze
    whose feed has not been read yet is not in force."""
    on: list[FreezeInForce] = []
    for freeze in freezes:
        if freeze.ical is None:
            assert freeze.start is not None and freeze.end is not None
            if freeze.start <= at < freeze.end:
                on.append(FreezeInForce(name=freeze.name, effect=freeze.effect, start=freeze.start, end=freeze.end))
            continue
        for event in happening((windows_of or {}).get(freeze.name, ()), at)[:1]:
            on.append(FreezeInForce(name=freeze.name, effect=freeze.effect, start=event.start, end=event.end))
    if not on:
        return None
    return max(on, key=lambda f: (f.effect.strictness, f.end))
