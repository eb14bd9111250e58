"""The sandbox's RBAC evaluation (adapters/kubernetes/sandbox/rbac.py) on its objects, without a server: rules,
wildcards, resourceNames, subjects, and which binding scopes a rule to which namespace."""

from __future__ import annotations

from adapters.kubernetes.sandbox.rbac import Attributes, Rbac, attributes_of, forbidden_status
from adapters.kubernetes.sandbox.rbac_objects import binding, role
from adapters.kubernetes.sandbox.rbac_protobuf import decode


def patch(resource: str, namespace: str, name: str = "api", group: str = "apps", sub: str = "") -> Attributes:
    return Attributes("patch", group, resource, sub, namespace, name)


def test_seeded_people_sre_anywhere_dave_reads_prod_and_rolls_staging() -> None:
    rbac = Rbac()
    rbac.seed()
    assert rbac.allows("alice@example.com", ["sre"], patch("deployments", "prod"))
    assert rbac.allows("alice@example.com", [], patch("deployments", "prod"))  # bound by name too
    assert rbac.allows("erin@example.com", ["sre"], patch("deployments", "prod"))
    assert not rbac.allows("erin@example.com", [], patch("deployments", "prod"))
    assert not rbac.allows("dave@example.com", [], patch("deployments", "prod"))
    assert rbac.allows("dave@example.com", [], Attributes("get", "apps", "deployments", "", "prod", "api"))
    assert rbac.allows("dave@example.com", [], patch("deployments", "staging", sub="scale"))
    assert not rbac.allows("dave@example.com", [], Attributes("get", "apps", "deployments", "", "default", "api"))
    assert rbac.allows("sandbox-admin", ["system:masters"], patch("nodes", "", "node-1", group=""))
    # Without the demo seed, only the built-in roles exist: nobody outside system:masters may do anything.
    assert not Rbac().allows("alice@example.com", ["sre"], patch("deployments", "prod"))


def test_rules_wildcards_subresources_and_resource_names() -> None:
    rbac = Rbac()
    rbac.objects.put(role("ClusterRole", "mixed", [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"], "resourceNames": ["api"]},
        {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]))
    rbac.objects.put(binding("ClusterRoleBinding", "mixed", "ClusterRole", "mixed", [("User", "u")]))
    assert rbac.allows("u", [], patch("deployments", "prod", "api"))
    assert not rbac.allows("u", [], patch("deployments", "prod", "web"))  # resourceNames
    assert not rbac.allows("u", [], patch("deployments", "prod", "api", sub="status"))  # not a subresource
    assert rbac.allows("u", [], patch("statefulsets", "prod", "db", sub="scale"))
    assert rbac.allows("u", [], Attributes("get", "", "pods", "", "prod", "x"))
    assert not rbac.allows("u", [], Attributes("get", "apps", "deployments", "", "prod", "x"))


def test_a_cluster_role_bound_in_a_namespace_applies_there_only_and_subjects_match_by_kind() -> None:
    rbac = Rbac()
    rbac.objects.put(role("ClusterRole", "patcher", [{"apiGroups": ["apps"], "resources": ["deployments"],
                                                      "verbs": ["patch"]}]))
    rbac.objects.put(binding("RoleBinding", "b", "ClusterRole", "patcher",
                             [("Group", "ops"), ("ServiceAccount", "robot")], "prod"))
    assert rbac.allows("anyone", ["ops"], patch("deployments", "prod"))
    assert not rbac.allows("anyone", ["ops"], patch("deployments", "staging"))
    assert not rbac.allows("ops", [], patch("deployments", "prod"))  # a Group subject is not a User
    assert rbac.allows("system:serviceaccount:prod:robot", [], patch("deployments", "prod"))
    assert not rbac.allows("system:serviceaccount:other:robot", [], patch("deployments", "prod"))
    # A RoleBinding to a Role that does not exist grants nothing.
    rbac.objects.put(binding("RoleBinding", "dangling", "Role", "absent", [("User", "u")], "prod"))
    assert not rbac.allows("u", [], patch("deployments", "prod"))


def test_impersonation_and_forbidden_are_worded_as_the_api_server_words_them() -> None:
    rbac = Rbac()
    refused = rbac.impersonation_refused("bot", ["system:authenticated"], "alice@example.com", ["sre"])
    assert refused is not None and refused["message"] == (
        'users "alice@example.com" is forbidden: User "bot" cannot impersonate resource "users" in API group "" '
        "at the cluster scope")
    rbac.objects.put(role("ClusterRole", "imp", [{"apiGroups": [""], "resources": ["users"],
                                                  "verbs": ["impersonate"]}]))
    rbac.objects.put(binding("ClusterRoleBinding", "imp", "ClusterRole", "imp", [("User", "bot")]))
    groups = rbac.impersonation_refused("bot", [], "alice@example.com", ["sre"])
    assert groups is not None and groups["message"].startswith('groups "sre" is forbidden: User "bot" cannot '
                                                               'impersonate resource "groups"')
    assert rbac.impersonation_refused("bot", [], "alice@example.com", []) is None
    found = attributes_of("PATCH", "/apis/apps/v1/namespaces/prod/deployments/api/scale", {})
    assert found == Attributes("patch", "apps", "deployments", "scale", "prod", "api")
    assert attributes_of("GET", "/apis/apps/v1/deployments", {"watch": "1"}) == Attributes(
        "watch", "apps", "deployments", "", "", "")
    assert attributes_of("GET", "/version", {}) is None
    status = forbidden_status("bob@example.com", patch("deployments", "prod"))
    assert status["message"] == ('deployments.apps "api" is forbidden: User "bob@example.com" cannot patch resource '
                                 '"deployments" in API group "apps" in the namespace "prod"')
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 403, "Forbidden")
    assert status["details"] == {"name": "api", "group": "apps", "kind": "deployments"}


def test_protobuf_rolebinding_as_kubectl_sends_it() -> None:
    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    meta = field(1, b"dave-deploys") + field(3, b"prod")
    subject = field(1, b"User") + field(2, b"rbac.authorization.k8s.io") + field(3, b"dave@example.com") + \
        field(4, b"")
    ref = field(1, b"rbac.authorization.k8s.io") + field(2, b"ClusterRole") + field(3, b"edit")
    raw = field(1, meta) + field(2, subject) + field(3, ref)
    envelope = field(1, field(1, b"rbac.authorization.k8s.io/v1") + field(2, b"RoleBinding")) + field(2, raw)
    assert decode(b"k8s\x00" + envelope) == {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "dave-deploys", "namespace": "prod"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "dave@example.com"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}}


def test_nobody_grants_what_they_do_not_hold_unless_they_may_bind_or_escalate() -> None:
    rbac = Rbac()
    rbac.seed()
    dave_prod = binding("RoleBinding", "dave-admin", "ClusterRole", "cluster-admin", [("User", "dave@example.com")],
                        "prod")
    refused = rbac.escalation("dave@example.com", ["system:authenticated"], dave_prod)
    assert refused == ('user "dave@example.com" (groups=["system:authenticated"]) is attempting to grant RBAC '
                       'permissions not currently held:\n{APIGroups:["*"], Resources:["*"], Verbs:["*"]}\n'
                       '{NonResourceURLs:["*"], Verbs:["*"]}')
    # alice holds cluster-admin (by name), so she may bind it; dave may grant what he already reads in prod.
    assert rbac.escalation("alice@example.com", ["system:authenticated"], dave_prod) is None
    reader = role("Role", "reader", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}], "prod")
    assert rbac.escalation("dave@example.com", [], reader) is None
    writer = role("Role", "writer", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}],
                  "prod")
    assert rbac.escalation("dave@example.com", [], writer) == (
        'user "dave@example.com" (groups=[]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:["apps"], Resources:["deployments"], Verbs:["patch"]}')
    rbac.grant("dave@example.com", ["escalate"], ["roles.rbac.authorization.k8s.io"], "prod")
    assert rbac.escalation("dave@example.com", [], writer) is None
