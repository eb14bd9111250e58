"""Which alerts an operation's silence covers, and the `[alertmanager]` policy table."""

from __future__ import annotations

import pytest

from core.domain.operations import parse_operation
from core.domain.policy_file import PolicyFileError, parse_policy
from core.domain.silences import matchers_for, silence_comment


@pytest.mark.parametrize(("action", "expected"), [
    ("rollout restart deployment/api -n prod", ['namespace="prod"', 'deployment="api"']),
    ("rollout restart statefulset/db -n data", ['namespace="data"', 'statefulset="db"']),
    ("rollout restart daemonset/node-exporter -n monitoring", ['namespace="monitoring"', 'daemonset="node-exporter"']),
    ("scale deployment/web --replicas=3 -n staging", ['namespace="staging"', 'deployment="web"']),
    ("rollout undo deployment/api -n prod", ['namespace="prod"', 'deployment="api"']),
    ("delete pod web-7d9f -n prod", ['namespace="prod"', 'pod="web-7d9f"']),
    ("cordon node-1", ['node="node-1"']),
    ("drain node-1", ['node="node-1"']),
])
def test_each_operation_silences_its_own_target(action: str, expected: list[str]) -> None:
    assert [m.show() for m in matchers_for(parse_operation(action))] == expected


def test_the_comment_names_the_request_and_its_signers() -> None:
    assert silence_comment("R-4", "kubectl cordon node-1", ("bob", "carol")) == (
        "signoff R-4: kubectl cordon node-1 (signed by bob, carol); ends when its verification ends")


def test_the_policy_table_defaults_off_and_refuses_unknown_keys() -> None:
    assert parse_policy("", "p.toml").alertmanager.silence is False
    assert parse_policy("[alertmanager]\nsilence = true\n", "p.toml").alertmanager.silence is True
    with pytest.raises(PolicyFileError, match=r"p.toml, line 2 \(alertmanager.silense\)"):
        parse_policy("[alertmanager]\nsilense = true\n", "p.toml")
