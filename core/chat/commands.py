"""What people can ask signoff, as frozen types: the chat's whole command language.

Every source of commands produces these: the text parser (console, Slack `/signoff`, thread
replies), a button click (`from_button` in `core.chat.parser`), Discord's typed app-command
options, a reaction on a playbook offer. `ChatCommands` dispatches each type to one handler.
Adding a command: one type here, one handler registered for it, one line per adapter.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from core.domain.approvals import Place
from core.domain.ids import IncidentId, PlaybookId, RequestId, Subject
from core.domain.policy import Risk


class ChatContext(BaseModel):
    """Who typed or clicked (their platform account), and where."""

    model_config = ConfigDict(frozen=True)

    platform: str
    account: str
    place: Place | None = None
    # The Slack workspace (team id) or Discord guild it came from, when the platform says.
    workspace: str | None = None


class Reply(BaseModel):
    """What the person who acted should see. `private` replies are ephemeral where the platform can."""

    model_config = ConfigDict(frozen=True)

    text: str
    private: bool = True
    ok: bool = True
    request_id: str | None = None
    # Signing needs this name typed (`confirm = true`): the adapter asks for it in a form (Slack, Discord).
    confirm: str | None = None


class Command(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Anyone may run it, known to the policy or not (`help`); every other command first
    # identifies the person, so a stranger hears "I don't know who you are" before anything else.
    anyone: ClassVar[bool] = False


class Request(Command):
    """`request <action> [risk=…] [incident=…] [reason="…"] [cluster=…]`."""

    action: str
    risk: Risk | None = None
    incident: IncidentId | None = None
    reason: str | None = None
    cluster: str | None = None


class Sign(Command):
    """The Approve button (`approve <id>` / `sign <id>` as text), or the comment form's submission
    (`approve <id> comment="…"` as text)."""

    request: RequestId
    comment: str | None = None
    confirm: str | None = None  # the target's name as typed (`confirm = true` risk levels)


class CommentForm(Command):
    """The "Approve with comment…" button: may this person sign? The adapter then asks for the
    comment (a Slack or Discord modal) and its submission is a `Sign` with the comment."""

    request: RequestId


class Reject(Command):
    """The Reject button (`reject <id> [reason]` / `veto` as text)."""

    request: RequestId
    reason: str | None = None


class Cancel(Command):
    request: RequestId


class Rerequest(Command):
    """`Request again` on a stale request's card (`rerequest <id>` as text)."""

    request: RequestId


class Show(Command):
    """`status <id>`."""

    request: RequestId


class Timeline(Command):
    subject: Subject


class List(Command):
    """`list`: the open requests."""


class Resolve(Command):
    """`resolve INC-7 score=4` (also `rate INC-7 4`)."""

    incident: IncidentId
    score: int = Field(ge=1, le=5)


class Rate(Resolve):
    """A rating button under a finished fix: resolves the incident with that score."""


class Playbooks(Command):
    pass


class Incidents(Command):
    """`incidents`: the open incidents (alerts correlate into them; a storm is a few lines here)."""


class Vote(Command):
    """A reaction on a playbook offer."""

    playbook: PlaybookId
    approve: bool


class Help(Command):
    anyone: ClassVar[bool] = True


class Unreadable(Command):
    """Text that is no command at all (an unknown word, far too long): told to anyone."""

    anyone: ClassVar[bool] = True
    message: str


class Malformed(Command):
    """A known command with arguments that do not read; told once the person is identified."""

    message: str
