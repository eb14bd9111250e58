"""Playbooks: fixes that worked, extracted from resolved incidents and approved by people.

Pure functions: extraction (trigger + operation template with placeholders), filling a
template from a new alert's labels, and votes until the playbook quorum.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from core.domain.events import EventType, NewEvent
from core.domain.incidents import Incident
from core.domain.operations import Operation, parse_operation
from core.domain.policy import Person, PlaybookRules, SignRule
from core.domain.templates import fill_template, placeholder
from core.errors import AlreadySigned, NotAuthorized, NotPending, ParseError

# The target kinds whose name may become a placeholder, filled from the label of the same name.
TEMPLATE_LABELS = ("deployment", "statefulset", "daemonset", "node")


class PlaybookStatus(StrEnum):
    proposed = "proposed"
    approved = "approved"
    rejected = "rejected"
    suspended = "suspended"  # its proposals failed verification twice in a row; no longer proposed


class Trigger(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert_name: str
    labels: dict[str, str] = Field(default_factory=dict)
    symptom: str = ""


class Vote(BaseModel):
    model_config = ConfigDict(frozen=True)

    person: str
    approve: bool
    via: str
    at: datetime


class Playbook(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    trigger: Trigger
    template: str
    risk: str | None = None
    source_incident: str
    source_request: str | None = None
    effectiveness: int
    status: PlaybookStatus = PlaybookStatus.proposed
    votes: tuple[Vote, ...] = ()
    created_at: datetime
    decided_at: datetime | None = None
    times_proposed: int = 0
    times_executed: int = 0
    times_succeeded: int = 0
    failures_in_a_row: int = 0
    version: int = 0

    def describe(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in sorted(self.trigger.labels.items())) or "any workload"
        return f"when {self.trigger.alert_name} fires ({where}) → `{self.template}`"


class PlaybookChange(NamedTuple):
    playbook: Playbook
    events: tuple[NewEvent, ...]


def template_from(command: str, labels: Mapping[str, str]) -> str:
    """Replace the target's name and the namespace in the command by `{label}` placeholders.

    `kubectl rollout restart deployment/api -n prod` with labels namespace=prod, deployment=api
    becomes `kubectl rollout restart deployment/{deployment} -n {namespace}`: the next alert
    for another deployment of the same kind fills in its own values. Only those two places are
    templated, and only from the label of the target's own kind: a word that merely equals some
    label value (the verb, the replica count, a namespace named like the deployment) stays as it is.
    """
    try:
        op = parse_operation(command)
    except ParseError:
        return command
    name_label = op.target if op.target in TEMPLATE_LABELS else None
    templated_name = name_label is not None and labels.get(name_label) == op.name
    templated_namespace = op.namespace is not None and labels.get("namespace") == op.namespace
    words = command.split()
    for index, word in enumerate(words):
        before = words[index - 1].lower() if index else ""
        if templated_name and word == f"{op.target}/{op.name}":
            words[index] = f"{op.target}/{placeholder(str(name_label))}"
        elif templated_name and word == op.name and before in (op.target, *_NAME_FOLLOWS):
            words[index] = placeholder(str(name_label))
        elif templated_namespace and word == op.namespace and before in ("-n", "--namespace", "in"):
            words[index] = placeholder("namespace")
    return " ".join(words)


# Words a node's bare name follows in the accepted forms (`cordon node-1`, `kubectl uncordon node-1`).
_NAME_FOLLOWS = ("cordon", "uncordon", "drain")


def fill(template: str, labels: Mapping[str, str]) -> Operation | None:
    """The operation a template means for these labels, or None if a label is missing or invalid."""
    text = fill_template(template, labels)
    if text is None:
        return None
    try:
        return parse_operation(text)
    except ParseError:
        return None


def worth_extracting(incident: Incident, rules: PlaybookRules) -> bool:
    """A finished incident whose fix was rated high enough to learn from."""
    return incident.status.done and rules.extracts(incident.effectiveness or 0)


def extract(
    *, playbook_id: str, incident_id: str, alert_name: str, trigger_labels: dict[str, str], symptom: str,
    command: str, alert_labels: Mapping[str, str], request_id: str, effectiveness: int, risk: str | None,
    at: datetime, rules: PlaybookRules,
) -> PlaybookChange:
    template = template_from(command, alert_labels)
    auto = rules.approves_at_once(effectiveness)
    playbook = Playbook(
        id=playbook_id, name=f"{alert_name}: {template}"[:200],
        trigger=Trigger(alert_name=alert_name, labels=trigger_labels, symptom=symptom[:500]), template=template,
        risk=risk, source_incident=incident_id, source_request=request_id, effectiveness=effectiveness,
        status=PlaybookStatus.approved if auto else PlaybookStatus.proposed, created_at=at,
        decided_at=at if auto else None,
    )
    events = [NewEvent(
        at=at, type=EventType.playbook_extracted, status=playbook.status.value,
        title=f"playbook {playbook_id} extracted from {incident_id}", detail=playbook.describe(),
        incident_id=incident_id, request_id=request_id,
    )]
    if auto:
        events.append(NewEvent(
            at=at, type=EventType.playbook_approved, status=playbook.status.value,
            title=f"playbook {playbook_id} approved automatically (effectiveness {effectiveness})",
            incident_id=incident_id,
        ))
    return PlaybookChange(playbook, tuple(events))


def vote(playbook: Playbook, *, by: Person, approve: bool, at: datetime, via: str, rule: SignRule) -> PlaybookChange:
    if playbook.status is not PlaybookStatus.proposed:
        raise NotPending(f"{playbook.id} is already {playbook.status}; votes are closed.", None)
    if not rule.admits(by):
        groups = ", ".join(sorted(by.groups)) or "no groups"
        raise NotAuthorized(
            f"Only {rule.describe_approvers()} may approve playbooks; you are in {groups}.", None,
        )
    if any(v.person == by.name for v in playbook.votes):
        raise AlreadySigned(f"You already voted on {playbook.id}; one person, one vote.", None)
    votes = (*playbook.votes, Vote(person=by.name, approve=approve, via=via, at=at))
    ayes = sum(1 for v in votes if v.approve)
    noes = len(votes) - ayes
    status: PlaybookStatus = playbook.status
    if ayes >= rule.quorum:
        status = PlaybookStatus.approved
    elif noes >= rule.quorum:
        status = PlaybookStatus.rejected
    updated = playbook.model_copy(update={
        "votes": votes, "status": status, "version": playbook.version + 1,
        "decided_at": at if status is not PlaybookStatus.proposed else None,
    })
    word = "approve" if approve else "reject"
    events = [NewEvent(
        at=at, type=EventType.playbook_vote, status=status.value,
        title=f"{by.name} voted to {word} {playbook.id} ({ayes} for, {noes} against, {rule.quorum} needed)",
        detail=f"via {via}", actor=by.name, actor_role="approver", incident_id=playbook.source_incident,
    )]
    if status is not PlaybookStatus.proposed:
        type_ = EventType.playbook_approved if status is PlaybookStatus.approved else EventType.playbook_rejected
        events.append(NewEvent(at=at, type=type_, status=status.value, title=f"playbook {playbook.id} {status}",
                               incident_id=playbook.source_incident))
    return PlaybookChange(updated, tuple(events))


# A playbook whose proposals fail this many times in a row is suspended.
SUSPEND_AFTER_FAILURES = 2


def counted(playbook: Playbook, *, proposed: int = 0, executed: int = 0, succeeded: int = 0,
            failed: int = 0) -> Playbook:
    """Use counts; a verified success clears the failure streak, a failure extends it."""
    streak = 0 if succeeded else playbook.failures_in_a_row + failed
    return playbook.model_copy(update={
        "times_proposed": playbook.times_proposed + proposed,
        "times_executed": playbook.times_executed + executed,
        "times_succeeded": playbook.times_succeeded + succeeded,
        "failures_in_a_row": streak,
        "version": playbook.version + 1,
    })


def suspend_if_failing(playbook: Playbook, *, at: datetime, request_id: str) -> PlaybookChange:
    """Two failures in a row suspend an approved playbook: it is not proposed again until people act."""
    if playbook.status is not PlaybookStatus.approved or playbook.failures_in_a_row < SUSPEND_AFTER_FAILURES:
        return PlaybookChange(playbook, ())
    updated = playbook.model_copy(update={"status": PlaybookStatus.suspended, "version": playbook.version + 1})
    event = NewEvent(
        at=at, type=EventType.playbook_suspended, status=updated.status.value,
        title=f"playbook {playbook.id} suspended",
        detail=f"its proposals failed {playbook.failures_in_a_row} times in a row, the last {request_id}",
        incident_id=playbook.source_incident,
    )
    return PlaybookChange(updated, (event,))
