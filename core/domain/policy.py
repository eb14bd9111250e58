"""Who may sign what: people, risk levels, quorums, expiry and the operation's risk floor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from core.domain import durations
from core.domain.breakglass_review import BreakglassRules
from core.domain.cluster import TargetFacts
from core.domain.clusters import AlertRules, ClusterSpec, ExecutionRules, default_cluster
from core.domain.durations import _duration_seconds
from core.domain.freeze import Freeze
from core.domain.incident_rules import IncidentRules
from core.domain.oncall import Schedule
from core.domain.operations import (
    CordonOp,
    DeletePodOp,
    DrainOp,
    Operation,
    OperationType,
    RestartOp,
    RollbackOp,
    ScaleOp,
    UncordonOp,
    by_operation,
)
from core.domain.silences import AlertmanagerRules
from core.errors import PolicyViolation, UnknownPerson

# Re-exported where they always were.
MAX_DURATION = durations.MAX_DURATION
format_duration = durations.format_duration
parse_duration = durations.parse_duration

ANYONE = "*"
BUILT_IN = "built-in policy"
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
    email: str | None = None  # matched by the web view's OIDC sign-in
    # Who the cluster sees with `[execution] as = "requester"` (docs/fleets.md).
    kubernetes: str | None = None
    kubernetes_groups: tuple[str, ...] = ()

    def account(self, platform: str) -> str | None:
        if platform == "slack":
            return self.slack
        if platform == "discord":
            return self.discord
        return self.name


class GroupHandles(BaseModel):
    """How a group is mentioned in chat: a Slack user group id (`S…`) and a Discord role id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slack: str | None = None
    discord: str | None = None

    def handle(self, platform: str) -> str | None:
        if platform == "slack":
            return self.slack
        if platform == "discord":
            return self.discord
        return None


def _within(bound: timedelta) -> Callable[[object], object]:
    """`"10m"` in a policy file, or seconds, at most `bound` (said in the refusal), at least one second."""
    def to_duration(value: object) -> object:
        if isinstance(value, bool):
            return value  # refused by the timedelta type: `true` is not a duration
        if isinstance(value, str):
            seconds: float = _duration_seconds(value)
            shown = value.strip()
        elif isinstance(value, int | float):
            seconds, shown = value, f"{value} seconds"
        elif isinstance(value, timedelta):
            seconds, shown = value.total_seconds(), format_duration(value)
        else:
            return value
        if not seconds <= bound.total_seconds():  # `not <=`: NaN is refused too
            raise ValueError(f"must be at most {format_duration(bound)}; `{shown}` is longer")
        if seconds < 1:
            raise ValueError("must be at least one second")
        return timedelta(seconds=seconds)
    return to_duration


# The longest duration a policy may write at all (retention), and the bounds of the shorter kinds: a request,
# its escalation and its reminder live at most 30 days; a verification at most a day.
MAX_REQUEST_DURATION = timedelta(days=30)
MAX_VERIFY_DURATION = timedelta(days=1)

# A policy duration: written `30m`, `1h`, `2h30m`, `45s`, `1d` (or seconds), at least one second and at most
# 30 days (`Duration`), a day (`VerifyDuration`) or ten years (`LongDuration`).
Duration = Annotated[timedelta, BeforeValidator(_within(MAX_REQUEST_DURATION))]
VerifyDuration = Annotated[timedelta, BeforeValidator(_within(MAX_VERIFY_DURATION))]
LongDuration = Annotated[timedelta, BeforeValidator(_within(MAX_DURATION))]


class SignRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    quorum: StrictInt = Field(ge=1, le=25)
    approvers: tuple[str, ...] = (ANYONE,)
    # Paging: still short of the quorum this long after creation, the thread mentions `escalate_to`;
    # this long before expiry, the approvers who have not signed are reminded once.
    escalate_after: Duration | None = None
    escalate_to: tuple[str, ...] = ()  # groups, or schedules as `oncall.<name>`
    remind_before_expiry: Duration | None = None
    page: tuple[str, ...] = ()  # schedules (`oncall.<name>`) whose person on call the card's first post mentions
    confirm: StrictBool = False  # approvers type the target's name (a form in Slack and Discord)

    @model_validator(mode="after")
    def _escalation_pairs(self) -> SignRule:
        if (self.escalate_after is None) != (not self.escalate_to):
            raise ValueError("escalate_after and escalate_to go together: when, and to which groups")
        if ANYONE in self.escalate_to:
            raise ValueError("escalate_to names groups; `*` (anyone) cannot be paged")
        return self

    def admits(self, person: Person) -> bool:
        return ANYONE in self.approvers or bool(person.groups & set(self.approvers))

    def describe_approvers(self) -> str:
        if ANYONE in self.approvers:
            return "anyone but the requester"
        return "members of " + ", ".join(self.approvers)


class RequestRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    expire_after: Duration = timedelta(minutes=30)
    protected_namespaces: tuple[str, ...] = ("kube-system",)
    max_replicas: StrictInt = Field(default=50, ge=0, le=100_000)
    max_per_person_per_minute: StrictInt = Field(default=20, ge=1, le=10_000)


class VerifyRules(BaseModel):
    """How long signoff follows an operation's effect when the workload names no deadline of its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: VerifyDuration = timedelta(minutes=10)
    max_restarts: StrictInt = Field(default=3, ge=1, le=1000)  # a new pod restarted this often: failed at once
    stuck_after: VerifyDuration = timedelta(minutes=2)  # a new pod this long in an image/config/crash wait: failed


# Incidents are rated 1 (no effect) to MAX_SCORE (fixed it).
MAX_SCORE = 5


class RetentionRules(BaseModel):
    """How long bookkeeping is kept: delivered chat messages and rate counters. Timeline events are kept forever."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keep: LongDuration = timedelta(days=30)

    @field_validator("keep")
    @classmethod
    def _at_least_a_day(cls, value: timedelta) -> timedelta:
        if value < timedelta(days=1):
            raise ValueError("keep must be at least 1d: a thread's replies need their card's delivered message")
        return value


class PlaybookRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    quorum: StrictInt = Field(default=1, ge=1, le=25)
    approvers: tuple[str, ...] = (ANYONE,)
    similarity: StrictFloat = Field(default=0.85, ge=0.0, le=1.0)
    # A fix rated at least `extract_min_score` becomes a playbook; at `auto_approve_score` it needs no votes.
    extract_min_score: StrictInt = Field(default=4, ge=1, le=MAX_SCORE)
    auto_approve_score: StrictInt = Field(default=5, ge=1, le=MAX_SCORE)
    across_clusters: StrictBool = False  # a playbook learned on one cluster may be proposed on another

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


class ChatRules(BaseModel):
    """Flood control: beyond this many new cards a minute, a channel gets one digest message a minute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_new_cards_per_minute: StrictInt = Field(default=10, ge=1, le=1000)


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
    retention: RetentionRules = RetentionRules()
    playbooks: PlaybookRules = PlaybookRules()
    chat: ChatRules = ChatRules()
    verify: VerifyRules = VerifyRules()
    rules: tuple[RuleSpec, ...] = ()
    groups: dict[str, GroupHandles] = Field(default_factory=dict)
    clusters: dict[str, ClusterSpec] = Field(default_factory=dict)
    alerts: AlertRules = AlertRules()
    execution: ExecutionRules = ExecutionRules()
    oncall: dict[str, Schedule] = Field(default_factory=dict)
    freeze: tuple[Freeze, ...] = ()  # [[freeze]] windows
    incidents: IncidentRules = IncidentRules()
    alertmanager: AlertmanagerRules = AlertmanagerRules()
    breakglass: BreakglassRules | None = None  # none: no break glass
    source: str = BUILT_IN

    def cluster_spec(self, name: str | None) -> ClusterSpec | None:
        """The `[clusters.<name>]` table (None: the default one); None without [clusters]."""
        chosen = name or default_cluster(self.clusters)
        return self.clusters.get(chosen) if chosen else None

    @property
    def open(self) -> bool:
        """Without a roster of people, any account may act and is known by its account id."""
        return not self.people

    def open_warning(self) -> str | None:
        """A policy file without a roster opens signing to anyone: worth saying loudly, never silently."""
        if not self.open or self.source == BUILT_IN:
            return None
        return (f"{self.source} has no [people]: anyone may sign any request (only the requester is refused); "
                "add [people.<name>] entries with their groups to say who may sign")

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

    def eligible(self, rule: SignRule, *, excluding: str | None = None) -> list[Person]:
        """The people on the roster who may sign under `rule` (never the requester)."""
        return [p for p in self.people.values() if p.name != excluding and rule.admits(p)]

    def quorum_shortfall(self, rule: SignRule, *, requester: str | None) -> str | None:
        """Why a quorum can never be met with this roster, or None when it can (or there is no roster)."""
        if self.open:
            return None
        eligible = self.eligible(rule, excluding=requester)
        if len(eligible) >= rule.quorum:
            return None
        who = ", ".join(sorted(p.name for p in eligible)) or "nobody"
        return (f"it needs {rule.quorum} signature(s) from {rule.describe_approvers()}, and only "
                f"{len(eligible)} could sign ({who})")

    def quorum_warnings(self) -> list[str]:
        """Every risk level where some request can never be approved with this roster.

        A requester who may sign does not count for their own request, so a level with exactly as many
        eligible people as its quorum is refused to each of them.
        """
        if self.open:
            return []
        warnings = []
        for risk in Risk:
            rule = self.rule_for(risk)
            eligible = sorted(p.name for p in self.eligible(rule))
            who = ", ".join(eligible) or "nobody"
            if len(eligible) < rule.quorum:
                warnings.append(f"{risk}: quorum {rule.quorum} from {rule.describe_approvers()}, but only "
                                f"{len(eligible)} people may sign ({who}): no {risk} request can be approved")
            elif len(eligible) == rule.quorum:
                warnings.append(f"{risk}: quorum {rule.quorum} from {rule.describe_approvers()}, and exactly "
                                f"{len(eligible)} people may sign ({who}): a {risk} request by any of them "
                                "can never be approved (the requester does not count)")
        return warnings

    def rule_for(self, risk: Risk) -> SignRule:
        if risk in self.risk:
            return self.risk[risk]
        # A partial policy file keeps the built-in quorum for the levels it leaves out.
        return DEFAULT_SIGN_RULES[risk]

    def risk_floor(self, op: Operation, facts: TargetFacts | None = None) -> Risk:
        namespace = op.namespace
        spec = self.cluster_spec(op.cluster)
        protected = (*self.requests.protected_namespaces, *(spec.protected_namespaces if spec else ()))
        if namespace is not None and namespace in protected:
            return Risk.critical
        floor = _FLOORS[type(op)](op, facts)
        if spec is not None and spec.risk_floor is not None:
            floor = max_risk(floor, Risk(spec.risk_floor))
        return floor

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
    DrainOp: _floor(Risk.high),
})
