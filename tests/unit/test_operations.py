from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.operations import (
    ACCEPTED_FORMS,
    CordonOp,
    DeletePodOp,
    DrainOp,
    RestartOp,
    RollbackOp,
    ScaleOp,
    UncordonOp,
    parse_operation,
)
from core.errors import ParseError

ACCEPTED = [
    ("rollout restart deployment/api -n prod", RestartOp(target="deployment", name="api", namespace="prod")),
    ("kubectl rollout restart deployment/api -n prod", RestartOp(target="deployment", name="api", namespace="prod")),
    ("rollout restart deployment api --namespace prod", RestartOp(target="deployment", name="api", namespace="prod")),
    ("rollout restart deploy/api --namespace=prod", RestartOp(target="deployment", name="api", namespace="prod")),
    ("rollout restart -n prod deployment/api", RestartOp(target="deployment", name="api", namespace="prod")),
    ("rollout restart statefulset/postgres -n prod", RestartOp(target="statefulset", name="postgres",
                                                               namespace="prod")),
    ("rollout restart sts/postgres -n prod", RestartOp(target="statefulset", name="postgres", namespace="prod")),
    ("rollout restart daemonset/node-exporter -n monitoring",
     RestartOp(target="daemonset", name="node-exporter", namespace="monitoring")),
    ("rollout restart deployment/api", RestartOp(target="deployment", name="api", namespace="default")),
    ("restart deployment api in prod", RestartOp(target="deployment", name="api", namespace="prod")),
    ("Restart Deployment api in prod", RestartOp(target="deployment", name="api", namespace="prod")),
    ("restart statefulset postgres in prod", RestartOp(target="statefulset", name="postgres", namespace="prod")),
    ("scale deployment/web --replicas=3 -n staging", ScaleOp(target="deployment", name="web", namespace="staging",
                                                             replicas=3)),
    ("kubectl scale deployment/web --replicas 3 -n staging", ScaleOp(target="deployment", name="web",
                                                                     namespace="staging", replicas=3)),
    ("scale --replicas=0 statefulset/postgres -n prod", ScaleOp(target="statefulset", name="postgres",
                                                                namespace="prod", replicas=0)),
    ("scale deployment web to 3 in staging", ScaleOp(target="deployment", name="web", namespace="staging",
                                                     replicas=3)),
    ("scale deployment web to 5", ScaleOp(target="deployment", name="web", namespace="default", replicas=5)),
    ("rollout undo deployment/api -n prod", RollbackOp(name="api", namespace="prod")),
    ("kubectl rollout undo deployment api -n prod", RollbackOp(name="api", namespace="prod")),
    ("rollback deployment api in prod", RollbackOp(name="api", namespace="prod")),
    ("delete pod web-7d9f -n prod", DeletePodOp(name="web-7d9f", namespace="prod")),
    ("kubectl delete pod/web-7d9f -n prod", DeletePodOp(name="web-7d9f", namespace="prod")),
    ("delete pod web-7d9f in prod", DeletePodOp(name="web-7d9f", namespace="prod")),
    ("cordon node-1", CordonOp(name="node-1")),
    ("kubectl cordon node-1", CordonOp(name="node-1")),
    ("cordon node node-1", CordonOp(name="node-1")),
    ("cordon node/ip-10-0-1-12.eu-west-1.compute.internal",
     CordonOp(name="ip-10-0-1-12.eu-west-1.compute.internal")),
    ("uncordon node-1", UncordonOp(name="node-1")),
    ("uncordon node node-1", UncordonOp(name="node-1")),
    ("drain node-1", DrainOp(name="node-1")),
    ("drain node node-1", DrainOp(name="node-1")),
    ("drain node/node-1", DrainOp(name="node-1")),
    ("kubectl drain node-1 --ignore-daemonsets", DrainOp(name="node-1")),
    ("kubectl drain --ignore-daemonsets=true node-1", DrainOp(name="node-1")),
    ("  rollout   restart   deployment/api   -n   prod  ", RestartOp(target="deployment", name="api",
                                                                    namespace="prod")),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_forms_parse(text: str, expected: object) -> None:
    assert parse_operation(text) == expected


@pytest.mark.parametrize("form", ACCEPTED_FORMS)
def test_every_documented_form_parses(form: str) -> None:
    operation = parse_operation(form)
    assert parse_operation(operation.command()) == operation


REFUSED = [
    ("", "empty"),
    ("kubectl", "empty"),
    ("exec -it api-0 -- sh", "not an operation"),
    ("kubectl apply -f deploy.yaml", "not an operation"),
    ("kubectl delete deployment api -n prod", "single pod"),
    ("delete pods --all -n prod", "not accepted"),
    ("delete pod -l app=web -n prod", "not accepted"),
    ("rollout restart deployment -l app=api", "not accepted"),
    ("rollout restart deployment/api -n prod; rm -rf /", "characters"),
    ("rollout restart deployment/api -n prod && curl evil", "characters"),
    ("rollout restart deployment/$(whoami)", "characters"),
    ("rollout restart deployment/`id`", "characters"),
    ("rollout restart deployment/api | sh", "characters"),
    ("rollout restart deployment/api > /tmp/x", "characters"),
    ("rollout restart deployment/API -n prod", "not a valid deployment name"),
    ("rollout restart deployment/api- -n prod", "not a valid deployment name"),
    ("rollout restart deployment/-api -n prod", "not a valid deployment name"),
    ("rollout restart deployment/api -n Prod", "not a valid namespace"),
    ("rollout restart deployment/api -n prod.x", "not a valid namespace"),
    ("rollout restart deployment/api -n " + "a" * 64, "not a valid namespace"),
    ("rollout restart deployment/" + "a" * 254, "not a valid deployment name"),
    ("rollout restart pod/api -n prod", "not on a pod"),
    ("rollout status deployment/api", "restart` or `undo"),
    ("rollout", "restart` or `undo"),
    ("rollout restart", "needs a target"),
    ("rollout restart deployment/api deployment/web", "exactly one target"),
    ("rollout restart deployment/api -n prod -n staging", "twice"),
    ("rollout restart deployment/api -n", "needs a namespace"),
    ("rollout restart configmap/api", "not a resource kind"),
    ("rollout undo statefulset/postgres -n prod", "works on a deployment"),
    ("scale deployment/web -n prod", "needs a number of replicas"),
    ("scale deployment/web --replicas=-1 -n prod", "not a number"),
    ("scale deployment/web --replicas=three", "not a number"),
    ("scale deployment/web --replicas=1e3", "not a number"),
    ("scale deployment/web --replicas=99999999", "not a number"),
    ("scale deployment/web --replicas=100000", "beyond"),
    ("scale deployment/web --replicas=3 --replicas=4", "twice"),
    ("scale deployment web to 3 --replicas=4", "twice"),
    ("scale daemonset/node-exporter --replicas=2", "deployment or a statefulset"),
    ("scale node/node-1 --replicas=2", "deployment or a statefulset"),
    ("rollout restart deployment/api --replicas=2", "only `scale`"),
    ("cordon node-1 -n prod", "not namespaced"),
    ("cordon deployment/api", "works on nodes"),
    ("cordon", "needs a target"),
    ("cordon node-1 node-2", "exactly one target"),
    ("delete pod web-1 --grace-period=0 --force", "not accepted"),
    ("delete pod", "needs a name"),
    ("rollout restart deployment -n prod", "needs a name"),
    ("restart configmap api", "exactly one target"),
    ("drain node-1 --delete-emptydir-data", "not accepted"),
    ("drain node-1 --force", "not accepted"),
    ("drain node-1 --ignore-daemonsets=false", "always ignores DaemonSet pods"),
    ("drain node-1 -n prod", "not namespaced"),
    ("drain deployment/api", "works on nodes"),
    ("drain", "needs a target"),
    ("drain node-1 node-2", "exactly one target"),
    ("cordon node-1 --ignore-daemonsets", "not accepted"),
    ("restart deployment api in", "needs a namespace"),
    ("patch deployment api -p '{}'", "characters"),
    ("rollout restart deployment/api\n-n prod\x00", "characters"),
    ("rollout restart deployment/ápi", "characters"),
    ("x" * 400, "longer than"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_refused_with_reason_and_accepted_forms(text: str, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_operation(text)
    message = caught.value.message
    assert reason in message
    assert "Accepted forms" in message
    assert "rollout restart deployment/api -n prod" in message


ALLOWED_KINDS = {"restart", "scale", "rollback", "delete", "cordon", "uncordon", "drain"}


def _check(text: str) -> None:
    try:
        operation = parse_operation(text)
    except ParseError:
        return
    # Whatever gets through is on the allow-list and re-renders to a form that parses identically.
    assert operation.kind in ALLOWED_KINDS
    assert parse_operation(operation.command()) == operation
    for char in ";|&$`<>(){}'\"\\\n":
        assert char not in operation.command()


@settings(max_examples=1500, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_arbitrary_text_never_crashes_or_escapes(text: str) -> None:
    _check(text)


WORDS = st.sampled_from([
    "kubectl", "rollout", "restart", "undo", "scale", "delete", "cordon", "uncordon", "rollback", "exec", "drain",
    "--ignore-daemonsets",
    "apply", "deployment/api", "deploy", "statefulset", "daemonset", "pod", "node", "node-1", "api", "web-7d9f",
    "-n", "--namespace", "prod", "in", "to", "3", "--replicas=3", "--replicas", "--all", "-l", "app=web",
    "-A", ";", "&&", "$(id)", "deployment/API", "0", "100000", "--force", "--namespace=prod", "kube-system",
])


@settings(max_examples=3000, deadline=None)
@given(st.lists(WORDS, max_size=8).map(" ".join))
def test_fuzz_word_salad_from_the_grammar(text: str) -> None:
    _check(text)


def test_a_trailing_newline_is_white_space_not_part_of_a_name() -> None:
    # Pasted text: the newline around the action is dropped, never kept in (or refused as) a name.
    assert parse_operation("rollout restart deployment/api -n prod\n") == parse_operation(
        "rollout restart deployment/api -n prod")
    with pytest.raises(ParseError, match="characters signoff never accepts"):
        parse_operation("rollout restart deployment/api\n-n prod")
