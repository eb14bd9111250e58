"""Who may sign what: people, risk levels, quorums, expiry and the operation's risk floor."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.domain.cluster import TargetFacts
from core.domain.operations import (
    CordonOp,
    DeletePodOp,
    Operation,
    OperationType,
    RestartOp,
    RollbackOp,
    ScaleOp,
    UncordonOp,
    by_operation,
)
from core.errors import PolicyViolation, UnknownPerson

ANYONE = "*"
# Platforms whose "account" is the person's name in the policy rather than a chat user id.
NAMED_BY_PERSON = frozenset({"console", "api"})


class Risk(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Risk).index(self)


def max_risk(*risks: Risk) -> Risk:
    return max(risks, key=lambda r: r.rank)


class Person(BaseModel):
    """A human (or an assistant) who can request and sign. Signatures are by person, not account."""

    model_config = ConfigDict(frozen=True)

    name: str
    slack: str | None = None
    discord: str | None = None
    groups: frozenset[str] = frozenset()

    def account(self, platform: str) -> str | None:
        if platform == "slack":
            return self.slack
        if platform == "discord":
            return self.discord
        return self.name


class SignRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    quorum: int = Field(ge=1, le=25)
    approvers: tuple[str, ...] = (ANYONE,)

    def admits(self, person: Person) -> bool:
        return ANYONE in self.approvers or bool(person.groups & set(self.approvers))

    def describe_approvers(self) -> str:
        if ANYONE in self.approvers:
            return "anyone but the requester"
        return "members of " + ", ".join(self.approvers)


def parse_duration(text: str) -> timedelta:
    """`30m`, `1h`, `2h30m`, `45s`, `1d`."""
    match = re.fullmatch(r"\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*", text)
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"`{text}` is not a duration; write it like 30m, 1h, 2h30m or 45s")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts[:2])


class RequestRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    expire_after: timedelta = timedelta(minutes=30)
    protected_namespaces: tuple[str, ...] = ("kube-system",)
    max_replicas: int = Field(default=50, ge=0)

    @field_validator("expire_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value)
        if isinstance(value, int | float):
            return timedelta(seconds=value)
        return value

    @field_validator("expire_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("expire_after must be at least one second")
        return value


class VerifyRules(BaseModel):
    """How long signoff follows an operation's effect when the workload names no deadline of its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: timedelta = timedelta(minutes=10)

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value)
        if isinstance(value, int | float):
            return timedelta(seconds=value)
        return value

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("timeout must be at least one second")
        return value


# Incidents are rated 1 (no effect) to MAX_SCORE (fixed it).
MAX_SCORE = 5


class PlaybookRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    quorum: int = Field(default=1, ge=1, le=25)
    approvers: tuple[str, ...] = (ANYONE,)
    similarity: float = Field(default=0.85, ge=0.0, le=1.0)
    # A fix rated at least `extract_min_score` becomes a playbook; at `auto_approve_score` it needs no votes.
    extract_min_score: int = Field(default=4, ge=1, le=MAX_SCORE)
    auto_approve_score: int = Field(default=5, ge=1, le=MAX_SCORE)

    @model_validator(mode="after")
    def _ordered(self) -> PlaybookRules:
        if self.auto_approve_score < self.extract_min_score:
            raise ValueError("auto_approve_score must be at least extract_min_score")
        return self

    @property
    def sign_rule(self) -> SignRule:
        return SignRule(quorum=self.quorum, approvers=self.approvers)

    def extracts(self, score: int) -> bool:
        return score >= self.extract_min_score

    def approves_at_once(self, score: int) -> bool:
        return score >= self.auto_approve_score

    def describe_extracting(self) -> str:
        """`4 or 5`, `5`, `3 to 5`: the scores that turn a fix into a playbook."""
        low, high = self.extract_min_score, MAX_SCORE
        if low == high:
            return str(high)
        return f"{low} or {high}" if high - low == 1 else f"{low} to {high}"


class RuleSpec(BaseModel):
    """An expert rule from the policy file: when an alert fires, propose this action."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert: str
    action: str
    risk: Risk | None = None
    reason: str | None = None


DEFAULT_SIGN_RULES: dict[Risk, SignRule] = {
    Risk.low: SignRule(quorum=1),
    Risk.medium: SignRule(quorum=1),
    Risk.high: SignRule(quorum=2),
    Risk.critical: SignRule(quorum=3),
}


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True)

    people: dict[str, Person] = Field(default_factory=dict)
    risk: dict[Risk, SignRule] = Field(default_factory=lambda: dict(DEFAULT_SIGN_RULES))
    requests: RequestRules = RequestRules()
    playbooks: PlaybookRules = PlaybookRules()
    verify: VerifyRules = VerifyRules()
    rules: tuple[RuleSpec, ...] = ()
    source: str = "built-in policy"

    @property
    def open(self) -> bool:
        """Without a roster of people, any account may act and is known by its account id."""
        return not self.people

    def person(self, platform: str, account: str) -> Person:
        """The person behind an account; refused, saying how to be added, when the roster lacks them."""
        person = self.identify(platform, account)
        if person is None:
            # The console and the API name the person directly; chat accounts are listed per platform.
            fix = (f"add an entry [people.{account}]" if platform in NAMED_BY_PERSON
                   else f"add `{platform} = \"{account}\"` to your entry under [people.<name>]")
            raise UnknownPerson(
                f"I don't know who you are: your {platform} account {account} is not in the policy "
                f"({self.source}). Ask an admin to {fix}."
            )
        return person

    def identify(self, platform: str, account: str) -> Person | None:
        """Map a platform account to a person; None when the policy does not know them."""
        for person in self.people.values():
            if person.account(platform) == account:
                return person
        if platform in NAMED_BY_PERSON and account in self.people:
            return self.people[account]
        if self.open:
            name = account if platform in NAMED_BY_PERSON else f"{platform}:{account}"
            return Person(name=name)
        return None

    def rule_for(self, risk: Risk) -> SignRule:
        if risk in self.risk:
            return self.risk[risk]
        # A partial policy file keeps the built-in quorum for the levels it leaves out.
        return DEFAULT_SIGN_RULES[risk]

    def risk_floor(self, op: Operation, facts: TargetFacts | None = None) -> Risk:
        namespace = op.namespace
        if namespace is not None and namespace in self.requests.protected_namespaces:
            return Risk.critical
        return _FLOORS[type(op)](op, facts)

    @staticmethod
    def floor_reads_facts(op: Operation) -> bool:
        """Whether the floor depends on the cluster's state, and so must be checked again before execution."""
        return type(op) in _FLOORS_READING_FACTS

    def effective_risk(self, op: Operation, stated: Risk | None, facts: TargetFacts | None = None) -> Risk:
        return max_risk(stated or Risk.medium, self.risk_floor(op, facts))

    def check_operation(self, op: Operation) -> None:
        check_replicas(op, self.requests.max_replicas)

    def is_responder(self, person: Person) -> bool:
        """May resolve and rate incidents: anyone who may sign something."""
        if self.open:
            return True
        if person.name not in self.people:
            return False
        rules = [*(self.rule_for(r) for r in Risk), self.playbooks.sign_rule]
        return any(rule.admits(person) for rule in rules)


def check_replicas(op: Operation, max_replicas: int) -> None:
    """The one place the replica cap is enforced: for requests and for the rules' proposals alike."""
    if isinstance(op, ScaleOp) and op.replicas > max_replicas:
        raise PolicyViolation(
            f"Scaling {op.target_ref} to {op.replicas} replicas is above the policy's limit of "
            f"{max_replicas}; ask for {max_replicas} or fewer."
        )


def _scale_floor(op: ScaleOp, facts: TargetFacts | None) -> Risk:
    if op.replicas == 0:
        return Risk.high
    # A replica count the cluster could not tell counts as the worst case: a drop by more than half.
    # (A target the cluster says is missing is blocked at execution whatever its risk.)
    if facts is None or (facts.exists and facts.replicas is None):
        return Risk.high
    if facts.replicas is not None and op.replicas < facts.replicas / 2:
        return Risk.high
    return Risk.low


_FLOORS_READING_FACTS = frozenset({ScaleOp})


def _floor(risk: Risk) -> Callable[[Any, TargetFacts | None], Risk]:
    return lambda _op, _facts: risk


# The lowest risk of each kind of operation outside protected namespaces: taking a node out of
# scheduling and going back a revision always need the high quorum; so does scaling to zero or by more than half.
_FLOORS: dict[OperationType, Callable[[Any, TargetFacts | None], Risk]] = by_operation({
    RestartOp: _floor(Risk.low),
    ScaleOp: _scale_floor,
    RollbackOp: _floor(Risk.high),
    DeletePodOp: _floor(Risk.low),
    CordonOp: _floor(Risk.high),
    UncordonOp: _floor(Risk.low),
})
