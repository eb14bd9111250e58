"""Reading the TOML policy file, with errors that name the file, the line and the field."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError

from core.domain.breakglass_review import BreakglassRules
from core.domain.clusters import CLUSTER_KEYS, AlertRules, ClusterSpec, ExecutionRules, cluster_problem
from core.domain.freeze import Freeze
from core.domain.incident_rules import IncidentRules
from core.domain.oncall import ONCALL_PREFIX, Schedule
from core.domain.policy import (
    DEFAULT_SIGN_RULES,
    ChatRules,
    Duration,
    GroupHandles,
    Person,
    PlaybookRules,
    Policy,
    RequestRules,
    RetentionRules,
    Risk,
    RuleSpec,
    SignRule,
    VerifyRules,
)
from core.domain.silences import AlertmanagerRules
from core.domain.text import name_problem
from core.errors import SignoffError

_TOP_LEVEL = {"people", "risk", "requests", "playbooks", "rules", "groups", "retention", "chat", "verify", "oncall",
              "freeze", "incidents", "alertmanager", "breakglass",
              "clusters", "alerts", "execution"}


class _ScheduleEntry(BaseModel):
    """An `[oncall.<name>]` table as written: `refresh` is a duration like `5m`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ical: str
    refresh: Duration = timedelta(minutes=5)


class _BreakglassEntry(BaseModel):
    """`[breakglass]` as written: durations like `5m`; reviewers left out take the highest level's approvers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    who: tuple[str, ...]
    after: Duration = timedelta(minutes=5)
    review_within: Duration = timedelta(hours=24)
    reviewers: tuple[str, ...] = ()
    review_quorum: StrictInt = 1


class PolicyFileError(SignoffError):
    code = "policy_file"

    def __init__(self, source: str, line: int | None, field: str | None, problem: str) -> None:
        where = source if line is None else f"{source}, line {line}"
        what = f" ({field})" if field else ""
        super().__init__(f"{where}{what}: {problem}")
        self.source = source
        self.line = line
        self.field = field
        self.problem = problem


def parse_policy(text: str, source: str) -> Policy:
    text = text.removeprefix("\ufeff")  # a byte order mark, as some editors on Windows write one
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise PolicyFileError(source, line, None, f"not valid TOML: {getattr(exc, 'msg', exc)}") from exc
    return _build(data, text, source)


def _build(data: dict[str, Any], text: str, source: str) -> Policy:
    for key in data:
        if key not in _TOP_LEVEL:
            raise PolicyFileError(
                source, _locate(text, [key]), key,
                f"unknown section `{key}`; expected one of {', '.join(sorted(_TOP_LEVEL))}",
            )
    people: dict[str, Person] = {}
    for name, entry in _table(data, "people", text, source).items():
        problem = name_problem(name, "people.<name>")
        if problem is not None:
            raise PolicyFileError(source, _locate(text, ["people", name]), "people", problem)
        if not isinstance(entry, dict):
            raise PolicyFileError(source, _locate(text, ["people", name]), f"people.{name}", "must be a table")
        unknown = set(entry) - {"slack", "discord", "groups", "email", "kubernetes", "kubernetes_groups"}
        if unknown:
            key = sorted(unknown)[0]
            raise PolicyFileError(
                source, _locate(text, ["people", name, key]), f"people.{name}.{key}",
                "unknown key; a person has `slack`, `discord`, `groups`, `email`, `kubernetes` and "
                "`kubernetes_groups`",
            )
        people[name] = _model(Person, {"name": name, **entry}, ["people", name], text, source)
    _check_unique_accounts(people, text, source)
    risk: dict[Risk, SignRule] = {}
    for level, entry in _table(data, "risk", text, source).items():
        if level not in Risk.__members__:
            raise PolicyFileError(
                source, _locate(text, ["risk", level]), f"risk.{level}",
                "unknown risk level; use low, medium, high or critical",
            )
        risk[Risk(level)] = _model(SignRule, entry, ["risk", level], text, source)
    groups: dict[str, GroupHandles] = {}
    for name, entry in _table(data, "groups", text, source).items():
        if not isinstance(entry, dict):
            raise PolicyFileError(source, _locate(text, ["groups", name]), f"groups.{name}", "must be a table")
        groups[name] = _model(GroupHandles, entry, ["groups", name], text, source)
    oncall: dict[str, Schedule] = {}
    for name, entry in _table(data, "oncall", text, source).items():
        if not isinstance(entry, dict):
            raise PolicyFileError(source, _locate(text, ["oncall", name]), f"oncall.{name}", "must be a table")
        written = _model(_ScheduleEntry, entry, ["oncall", name], text, source)
        oncall[name] = _model(Schedule, written.model_dump(), ["oncall", name], text, source)
    _check_escalation_groups(risk, people, groups, oncall, text, source)
    requests = _model(RequestRules, _table(data, "requests", text, source), ["requests"], text, source)
    retention = _model(RetentionRules, _table(data, "retention", text, source), ["retention"], text, source)
    playbook_table = dict(_table(data, "playbooks", text, source))
    risk = _complete(risk)
    if people and "approvers" not in playbook_table:
        # Left out, playbook approval must not open to everyone on the roster (a 5 rating approves one):
        # it takes the approvers of the highest risk level.
        playbook_table["approvers"] = list(risk[max(Risk, key=lambda r: r.rank)].approvers)
    playbooks = _model(PlaybookRules, playbook_table, ["playbooks"], text, source)
    chat = _model(ChatRules, _table(data, "chat", text, source), ["chat"], text, source)
    incidents = _model(IncidentRules, _table(data, "incidents", text, source), ["incidents"], text, source)
    verify = _model(VerifyRules, _table(data, "verify", text, source), ["verify"], text, source)
    rules_data = data.get("rules", [])
    if not isinstance(rules_data, list):
        raise PolicyFileError(source, _locate(text, ["rules"]), "rules", "write rules as [[rules]] tables")
    rules = tuple(_model(RuleSpec, entry, ["rules"], text, source) for entry in rules_data)
    clusters = _clusters(_table(data, "clusters", text, source), text, source)
    alerts = _model(AlertRules, _table(data, "alerts", text, source), ["alerts"], text, source)
    execution = _model(ExecutionRules, _table(data, "execution", text, source), ["execution"], text, source)
    alertmanager = _model(AlertmanagerRules, _table(data, "alertmanager", text, source), ["alertmanager"], text, source)
    freeze_data = data.get("freeze", [])
    if not isinstance(freeze_data, list) or not all(isinstance(entry, dict) for entry in freeze_data):
        raise PolicyFileError(source, _locate(text, ["freeze"]), "freeze", "write freezes as [[freeze]] tables")
    freezes = tuple(_model(Freeze, entry, ["freeze"], text, source) for entry in freeze_data)
    names = [f.name for f in freezes]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})[0]
        raise PolicyFileError(source, _locate(text, ["freeze"]), "freeze.name",
                              f"two freezes are named `{twice}`; give each its own name")
    breakglass = None
    if "breakglass" in data:
        written = _model(_BreakglassEntry, _table(data, "breakglass", text, source), ["breakglass"], text, source)
        entry = written.model_dump()
        entry["reviewers"] = entry["reviewers"] or [a for a in risk[Risk.critical].approvers if a != "*"]
        breakglass = _model(BreakglassRules, entry, ["breakglass"], text, source)
    return Policy(breakglass=breakglass,
                  people=people, risk=risk, requests=requests, retention=retention, playbooks=playbooks,
                  rules=rules, groups=groups, chat=chat, verify=verify, oncall=oncall, freeze=freezes,
                  incidents=incidents, clusters=clusters, alerts=alerts, execution=execution,
                  alertmanager=alertmanager, source=source)

def _clusters(table: dict[str, Any], text: str, source: str) -> dict[str, ClusterSpec]:
    """`[clusters.<name>]`: known keys only, a valid risk floor, at most one `default = true`."""
    clusters: dict[str, ClusterSpec] = {}
    default: str | None = None
    for name, entry in table.items():
        problem = cluster_problem(name)
        if problem is not None:
            raise PolicyFileError(source, _locate(text, ["clusters", name]), "clusters", problem)
        if not isinstance(entry, dict):
            raise PolicyFileError(source, _locate(text, ["clusters", name]), f"clusters.{name}", "must be a table")
        for key in entry:
            if key not in CLUSTER_KEYS:
                raise PolicyFileError(
                    source, _locate(text, ["clusters", name, key]), f"clusters.{name}.{key}",
                    f"unknown key; a cluster has {', '.join(f'`{k}`' for k in CLUSTER_KEYS)}",
                )
        floor = entry.get("risk_floor")
        if floor is not None and floor not in Risk.__members__:
            raise PolicyFileError(
                source, _locate(text, ["clusters", name, "risk_floor"]), f"clusters.{name}.risk_floor",
                "unknown risk level; use low, medium, high or critical",
            )
        spec: ClusterSpec = _model(ClusterSpec, entry, ["clusters", name], text, source)
        if spec.default:
            if default is not None:
                raise PolicyFileError(
                    source, _locate(text, ["clusters", name, "default"]), f"clusters.{name}.default",
                    f"a second default cluster; {default} is the default already (one cluster has `default = true`)",
                )
            default = name
        clusters[name] = spec
    return clusters


def cluster_line(text: str, name: str, key: str) -> int | None:
    """The line of `[clusters.<name>] <key>` (for check-config's findings outside this module)."""
    return _locate(text, ["clusters", name, key])


def _complete(defined: dict[Risk, SignRule]) -> dict[Risk, SignRule]:
    """Levels the file leaves out keep the built-in quorum but take their approvers from the nearest
    level the file does define (above first), so an unlisted `low` never opens signing to everyone."""
    if not defined:
        return dict(DEFAULT_SIGN_RULES)
    levels = list(Risk)
    complete: dict[Risk, SignRule] = {}
    for level in levels:
        if level in defined:
            complete[level] = defined[level]
            continue
        above = [r for r in levels[level.rank + 1:] if r in defined]
        below = [r for r in reversed(levels[:level.rank]) if r in defined]
        source_rule = defined[(above or below)[0]]
        complete[level] = SignRule(quorum=DEFAULT_SIGN_RULES[level].quorum, approvers=source_rule.approvers)
    return complete


def _check_escalation_groups(
    risk: dict[Risk, SignRule], people: dict[str, Person], groups: dict[str, GroupHandles],
    oncall: dict[str, Schedule], text: str, source: str,
) -> None:
    """An escalation must reach somebody: a group with a chat handle or with people in it, or a schedule;
    `page` names schedules only."""
    known = set(groups) | {g for person in people.values() for g in person.groups}
    for level, rule in risk.items():
        for group in rule.escalate_to:
            schedule = group.removeprefix(ONCALL_PREFIX) if group.startswith(ONCALL_PREFIX) else None
            if schedule is not None and schedule not in oncall:
                raise PolicyFileError(
                    source, _locate(text, ["risk", level.value, "escalate_to"]), f"risk.{level.value}.escalate_to",
                    f"unknown schedule `{group}`: add [oncall.{schedule}] with its ical feed")
            if schedule is None and group not in known:
                raise PolicyFileError(
                    source, _locate(text, ["risk", level.value, "escalate_to"]), f"risk.{level.value}.escalate_to",
                    f"unknown group `{group}`: add [groups.{group}] with its slack/discord handle, "
                    "or put people in it",
                )
        for page in rule.page:
            if not page.startswith(ONCALL_PREFIX) or page.removeprefix(ONCALL_PREFIX) not in oncall:
                raise PolicyFileError(
                    source, _locate(text, ["risk", level.value, "page"]), f"risk.{level.value}.page",
                    f"`{page}` is not a schedule: page names schedules as `oncall.<name>`, each with an "
                    "[oncall.<name>] table")


def _table(data: dict[str, Any], key: str, text: str, source: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise PolicyFileError(source, _locate(text, [key]), key, "must be a table")
    return value


# Types are strict: `quorum = true` or `quorum = "2"` is a mistake to point out, not a 1 or a 2 to guess.
_TYPE_MESSAGES = {
    "int_type": "must be an integer, like 2 (not true, 2.0 or \"2\")",
    "int_from_float": "must be an integer, like 2 (not 2.5)",
    "float_type": "must be a number, like 0.85 (not \"0.85\")",
    "string_type": "must be a string in quotes, like \"U0ALICE\"",
    "bool_type": "must be true or false",
    "tuple_type": "must be a list, like [\"sre\"]",
    "list_type": "must be a list, like [\"sre\"]",
    "frozen_set_type": "must be a list, like [\"sre\"]",
    "set_type": "must be a list, like [\"sre\"]",
    "dict_type": "must be a table",
    "model_type": "must be a table",
}


def _model(cls: Any, value: Any, path: list[str], text: str, source: str) -> Any:
    try:
        return cls.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]]
        field = ".".join(path + loc)
        message = _TYPE_MESSAGES.get(error["type"], str(error["msg"]).removeprefix("Value error, "))
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        raise PolicyFileError(source, _locate(text, path + loc[:1]), field, message) from None


def _check_unique_accounts(people: dict[str, Person], text: str, source: str) -> None:
    seen: dict[tuple[str, str], str] = {}
    for person in people.values():
        for platform in ("slack", "discord"):
            account = person.account(platform)
            if account is None:
                continue
            other = seen.get((platform, account))
            if other is not None:
                raise PolicyFileError(
                    source, _locate(text, ["people", person.name, platform]), f"people.{person.name}.{platform}",
                    f"the {platform} account {account} already belongs to {other}; one account, one person",
                )
            seen[(platform, account)] = person.name


def _locate(text: str, path: list[str]) -> int | None:
    """Best-effort line of a key: find its table header, then the key below it."""
    lines = text.splitlines()
    header_line = None
    for depth in range(len(path), 0, -1):
        header = ".".join(path[:depth])
        pattern = re.compile(r"^\s*\[\[?\s*" + re.escape(header) + r"\s*\]\]?\s*(#.*)?$")
        for number, line in enumerate(lines, start=1):
            if pattern.match(line):
                header_line = number
                rest = path[depth:]
                if not rest:
                    return number
                key_pattern = re.compile(r"^\s*" + re.escape(rest[0]) + r"\s*=")
                for offset, following in enumerate(lines[number:], start=number + 1):
                    if following.lstrip().startswith("["):
                        break
                    if key_pattern.match(following):
                        return offset
                return number
    if header_line is None and path:
        key_pattern = re.compile(r"^\s*" + re.escape(path[-1]) + r"\s*=")
        for number, line in enumerate(lines, start=1):
            if key_pattern.match(line):
                return number
    return header_line


def _line_from_message(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None
