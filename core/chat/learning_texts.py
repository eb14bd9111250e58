"""What people read about incidents and playbooks: the rating card, announcements, lists.

The alert intake, incidents and playbooks (core.app) decide when each is said; the wording lives here,
and every score it mentions comes from the policy's `PlaybookRules`, never from a literal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from core.chat.cards import Button, ButtonAction, Card, CardState
from core.domain.incidents import Incident
from core.domain.playbooks import Playbook, PlaybookStatus
from core.domain.policy import MAX_SCORE, PlaybookRules

SCORES = range(1, MAX_SCORE + 1)
RESOLVE_HINT = "resolve {incident} score=<1-5>"


def resolve_hint(incident_id: str) -> str:
    return RESOLVE_HINT.format(incident=incident_id)


def rating_card(request_id: str, incident_id: str, rules: PlaybookRules, *, evidence: str | None = None) -> Card:
    """Asked in the thread of a request that succeeded (verified) for an incident that has no rating yet;
    asked again with the evidence when the alert resolves."""
    return Card(
        key=f"rate-{incident_id}",
        title=f"How well did {request_id} fix {incident_id}?",
        text=((f"Evidence: {evidence.lstrip('🟢 ')}\n" if evidence else "")
              + f"Rate it 1 (no effect) to {MAX_SCORE} (fixed it). The rating resolves {incident_id}; "
              f"a {rules.describe_extracting()} turns the fix into a playbook for the next similar alert."),
        colour="grey",
        buttons=tuple(Button(action=ButtonAction.rate, label=str(score), value=f"{incident_id}:{score}",
                             style="primary" if rules.extracts(score) else "secondary") for score in SCORES),
        footer=f"or type `{resolve_hint(incident_id)}`",
        state=CardState.rating,
    )


def no_proposal(incident: Incident, rationale: str) -> str:
    return (f"🔔 {incident.id}: {incident.alert_name} on {incident.subject}. {incident.symptom}\n"
            f"No proposal ({rationale}). What should we do? "
            f"`request <action> incident={incident.id}` asks for an operation.")


def resolved_after(incident_id: str, request_id: str, after: timedelta) -> str:
    """`INC-1's alert resolved 2 min after R-3 was verified`."""
    seconds = max(0, int(after.total_seconds()))
    span = f"{seconds} s" if seconds < 60 else f"{round(seconds / 60)} min"
    return f"🟢 {incident_id}'s alert resolved {span} after {request_id} was verified."


def playbook_suspended(playbook: Playbook, request_id: str) -> str:
    return (f"⏸️ Playbook {playbook.id} is suspended: its proposals failed {playbook.failures_in_a_row} times in "
            f"a row (the last, {request_id}). Similar alerts no longer get its proposal.")


def incident_resolved(incident_id: str, by: str, score: int) -> str:
    return f"🏁 {incident_id} resolved by {by}: the fix rated {score}/{MAX_SCORE}."


def resolved_reply(incident_id: str, score: int, rules: PlaybookRules) -> str:
    """The answer to the person who resolved the incident."""
    learned = (f" A score of {rules.describe_extracting()} turns the fix into a playbook."
               if rules.extracts(score) else "")
    return f"🏁 {incident_id} resolved; the fix rated {score}/{MAX_SCORE}.{learned}"


def playbook_learned(playbook: Playbook, incident_id: str, rules: PlaybookRules) -> str:
    if playbook.status is PlaybookStatus.approved:
        return (f"📘 Playbook {playbook.id} learned from {incident_id} and approved automatically "
                f"(effectiveness {playbook.effectiveness}/{MAX_SCORE}): {playbook.describe()}")
    rule = rules.sign_rule
    return (f"📘 Playbook {playbook.id} proposed from {incident_id} (effectiveness "
            f"{playbook.effectiveness}/{MAX_SCORE}): {playbook.describe()}\n"
            f"React ✅ or 👍 to approve, ❌ or 👎 to reject; {rule.quorum} vote(s) from "
            f"{rule.describe_approvers()} decide.")


def playbook_decided(playbook: Playbook) -> str:
    verdict = ("approved: the next similar alert gets its proposal" if playbook.status is PlaybookStatus.approved
               else "rejected: it will not be proposed")
    return f"📘 Playbook {playbook.id} {verdict}."


def vote_counted(playbook: Playbook) -> str:
    return f"🗳️ Your vote on {playbook.id} is counted; it is {playbook.status}."


def playbooks_text(playbooks: Sequence[Playbook], rules: PlaybookRules) -> str:
    if not playbooks:
        return (f"No playbooks yet. They are learned when an incident is resolved with a score of "
                f"{rules.describe_extracting()} after a successful fix.")
    lines = [f"{len(playbooks)} playbook(s):"]
    for playbook in playbooks:
        lines.append(
            f"{playbook.id} [{playbook.status}] effectiveness {playbook.effectiveness}/{MAX_SCORE} · used: "
            f"{playbook.times_proposed} proposed, {playbook.times_executed} executed, "
            f"{playbook.times_succeeded} succeeded · {playbook.describe()} (from {playbook.source_incident})"
        )
    return "\n".join(lines)


MAX_INCIDENT_LINES = 50


def open_incidents_text(incidents: Sequence[Incident]) -> str:
    if not incidents:
        return "No open incidents. Alertmanager's alerts open them; `request … incident=INC-…` links a request."
    lines = [f"{len(incidents)} open incident(s), latest first:"]
    for incident in incidents[:MAX_INCIDENT_LINES]:
        scope = f" · {incident.scope}" if incident.alert_count else ""
        requests = f" · requests {', '.join(incident.request_ids)}" if incident.request_ids else " · no request yet"
        lines.append(f"{incident.id} [{incident.status}] {incident.title}{scope}{requests} · "
                     f"`timeline {incident.id}`, `{resolve_hint(incident.id)}`")
    if len(incidents) > MAX_INCIDENT_LINES:
        lines.append(f"… and {len(incidents) - MAX_INCIDENT_LINES} more; `signoff timeline INC-…` shows any of them.")
    return "\n".join(lines)
