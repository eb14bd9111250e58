"""`[incidents]`: what happens to an incident's proposal when its alerts resolve before anyone signed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool


class IncidentRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # All of an incident's alerts resolved while its proposal was pending: cancel it ("the alert resolved on
    # its own"); false keeps it pending until it is signed, rejected or expires.
    cancel_when_resolved: StrictBool = True
