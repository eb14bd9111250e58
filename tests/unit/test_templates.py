"""The one placeholder-template engine, used by playbooks and by the policy's expert rules."""

from __future__ import annotations

import pytest

from core.domain.operations import CordonOp, RestartOp
from core.domain.playbooks import fill, template_from
from core.domain.templates import fill_template, fill_text, placeholder, plain_name

PROD_API = {"namespace": "prod", "deployment": "api", "node": "node-1"}

# (template, labels, filled action or None)
FILL: list[tuple[str, dict[str, str], str | None]] = [
    ("cordon {node}", {"node": "node-1"}, "cordon node-1"),
    ("rollout restart deployment/{deployment} -n {namespace}", PROD_API, "rollout restart deployment/api -n prod"),
    ("rollout restart deployment/{app} -n {namespace}", {"app": "api", "namespace": "prod"},
     "rollout restart deployment/api -n prod"),
    ("cordon {Node_1}", {"Node_1": "n1"}, "cordon n1"),  # upper case and digits in a label name
    ("cordon node-1", {"node": "x"}, "cordon node-1"),  # no placeholder: unchanged
    ("", {}, ""),
    ("{node}{node}", {"node": "a"}, "aa"),
    # missing, empty or not-a-plain-name values: nothing is filled at all
    ("cordon {node}", {}, None),
    ("cordon {node}", {"node": ""}, None),
    ("cordon {node}", {"node": "Node-1"}, None),
    ("cordon {node}", {"node": "node-1 -n x"}, None),
    ("cordon {node}", {"node": "a/b"}, None),
    ("cordon {node}", {"node": "-node"}, None),
    ("cordon {node}", {"node": "a" * 254}, None),
    ("cordon {node}", {"node": "x;rm"}, None),
    ("rollout restart deployment/{deployment} -n {namespace}", {"deployment": "api"}, None),
    # not placeholders: left alone, never evaluated
    ("restart deployment {0.__class__}", {}, "restart deployment {0.__class__}"),
    ("restart {} {1x}", {}, "restart {} {1x}"),
    ("restart {{node}}", {"node": "n"}, "restart {n}"),
]


@pytest.mark.parametrize(("template", "labels", "expected"), FILL)
def test_fill_template(template: str, labels: dict[str, str], expected: str | None) -> None:
    assert fill_template(template, labels) == expected


# (text, labels, filled sentence): a sentence keeps what cannot be filled
TEXT: list[tuple[str, dict[str, str], str]] = [
    ("{deployment} in {namespace} is slow", PROD_API, "api in prod is slow"),
    ("{deployment} on {cluster}", PROD_API, "api on {cluster}"),
    ("{node} is down", {"node": "Bad Node"}, "{node} is down"),
    ("{0.__class__}", {}, "{0.__class__}"),
]


@pytest.mark.parametrize(("text", "labels", "expected"), TEXT)
def test_fill_text(text: str, labels: dict[str, str], expected: str) -> None:
    assert fill_text(text, labels) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("api", "api"), ("ip-10-0-1-23.ec2.internal", "ip-10-0-1-23.ec2.internal"), ("a", "a"),
    (None, None), ("", None), ("API", None), ("api ", None), ("api-", None), ("a" * 253, "a" * 253),
    ("a" * 254, None),
])
def test_plain_name(value: str | None, expected: str | None) -> None:
    assert plain_name(value) == expected


def test_placeholder() -> None:
    assert placeholder("node") == "{node}"
    assert fill_template(placeholder("node"), {"node": "n1"}) == "n1"


# The playbook side: a command made into a template and filled again for another alert.
ROUND_TRIP = [
    ("kubectl rollout restart deployment/api -n prod", PROD_API,
     "kubectl rollout restart deployment/{deployment} -n {namespace}",
     {"deployment": "web", "namespace": "staging"}, RestartOp(target="deployment", name="web", namespace="staging")),
    ("kubectl cordon node-1", PROD_API, "kubectl cordon {node}", {"node": "node-2"}, CordonOp(name="node-2")),
    ("kubectl cordon node-1", PROD_API, "kubectl cordon {node}", {"node": "node-2 --all"}, None),
    ("kubectl rollout restart deployment/api -n prod", PROD_API,
     "kubectl rollout restart deployment/{deployment} -n {namespace}", {"deployment": "web"}, None),
    # A label value that would smuggle a second namespace in is refused, not parsed.
    ("kubectl rollout restart deployment/api", {"deployment": "api"}, "kubectl rollout restart deployment/{deployment}",
     {"deployment": "web -n kube-system"}, None),
]


# Only the target's name and the namespace become placeholders, never another word that happens to equal a label.
ONLY_NAME_AND_NAMESPACE = [
    # The namespace shares the deployment's name: `-n {deployment}` would send the next fix to the wrong place.
    ("kubectl rollout restart deployment/payments -n payments", {"deployment": "payments", "namespace": "payments"},
     "kubectl rollout restart deployment/{deployment} -n {namespace}"),
    # A label equal to the verb or the kind stays a label.
    ("kubectl rollout restart deployment/api -n prod", {"node": "restart", "job": "rollout", "deployment": "api",
                                                        "namespace": "prod", "x": "deployment"},
     "kubectl rollout restart deployment/{deployment} -n {namespace}"),
    ("kubectl scale deployment/web --replicas=3 -n prod", {"deployment": "web", "namespace": "prod", "n": "3",
                                                          "replicas": "--replicas=3"},
     "kubectl scale deployment/{deployment} --replicas=3 -n {namespace}"),
    # A label of another kind naming the same workload is not the target's label.
    ("kubectl rollout restart deployment/api -n prod", {"statefulset": "api", "namespace": "prod"},
     "kubectl rollout restart deployment/api -n {namespace}"),
    ("kubectl cordon node-1", {"node": "node-1", "namespace": "node-1"}, "kubectl cordon {node}"),
    ("restart deployment api in prod", {"deployment": "api", "namespace": "prod"},
     "restart deployment {deployment} in {namespace}"),
]


@pytest.mark.parametrize(("command", "labels", "template"), ONLY_NAME_AND_NAMESPACE)
def test_only_the_target_name_and_namespace_become_placeholders(command: str, labels: dict[str, str],
                                                                template: str) -> None:
    assert template_from(command, labels) == template


@pytest.mark.parametrize(("command", "labels", "template", "new_labels", "expected"), ROUND_TRIP)
def test_playbook_template_round_trip(command: str, labels: dict[str, str], template: str,
                                      new_labels: dict[str, str], expected: object) -> None:
    assert template_from(command, labels) == template
    assert fill(template, new_labels) == expected
