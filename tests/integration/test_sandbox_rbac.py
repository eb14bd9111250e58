"""The sandbox's RBAC as a real API server's (issue 19, item 6), through the official client: the RBAC objects
served on their real paths, evaluated for every call, impersonation allowed only to a caller granted
`impersonate` (deploy/rbac.yaml's signoff-impersonate), access reviews, and 403s worded as the real ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from testkit.fakes.sandbox import HookedSandbox

pytest_plugins = ("tests.fixtures_kubernetes",)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SIGNOFF = "system:serviceaccount:signoff:signoff"
SA_TOKEN = "signoff-sa-token"


def status_of(error: ApiException) -> dict[str, Any]:
    body = json.loads(error.body or "{}")
    assert isinstance(body, dict)
    return body


def connect(sandbox: HookedSandbox, token: str, user: str | None = None,
            groups: tuple[str, ...] = ()) -> client.ApiClient:
    configuration = client.Configuration(host=sandbox.url, api_key={"authorization": f"Bearer {token}"})
    configuration.retries = False
    api = client.ApiClient(configuration)
    if user is not None:
        api.set_default_header("Impersonate-User", user)  # type: ignore[no-untyped-call]
    if groups:
        api.set_default_header("Impersonate-Group", groups[0])  # type: ignore[no-untyped-call]
    return api


def review(api_client: client.ApiClient, user: str, verb: str, resource: str, namespace: str = "",
           groups: list[str] | None = None, group: str = "apps", name: str = "", subresource: str = "") -> Any:
    body = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=groups, resource_attributes=client.V1ResourceAttributes(
            verb=verb, group=group, resource=resource, namespace=namespace or None, name=name or None,
            subresource=subresource or None)))
    return client.AuthorizationV1Api(api_client).create_subject_access_review(body).status


def test_rbac_objects_are_served_on_their_real_paths(api_client: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    assert {b.metadata.name for b in rbac.list_namespaced_role_binding("prod").items} == {"dave-views"}
    assert "cluster-admin" in {r.metadata.name for r in rbac.list_cluster_role().items}
    role = client.V1Role(metadata=client.V1ObjectMeta(name="reader"), rules=[client.V1PolicyRule(
        api_groups=["apps"], resources=["deployments"], verbs=["get"], resource_names=["api"])])
    created = rbac.create_namespaced_role("prod", role)
    assert created.metadata.namespace == "prod" and created.metadata.resource_version
    with pytest.raises(ApiException) as duplicate:
        rbac.create_namespaced_role("prod", role)
    assert duplicate.value.status == 409
    assert status_of(duplicate.value)["message"] == 'roles.rbac.authorization.k8s.io "reader" already exists'
    patched = rbac.patch_namespaced_role("reader", "prod", {"metadata": {"labels": {"team": "sre"}}})
    assert patched.metadata.labels == {"team": "sre"} and patched.rules[0].resource_names == ["api"]
    binding = client.V1RoleBinding(metadata=client.V1ObjectMeta(name="erin-reads"),
                                   role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                                             name="reader"),
                                   subjects=[client.RbacV1Subject(kind="User", name="erin@example.com",
                                                                  api_group="rbac.authorization.k8s.io")])
    rbac.create_namespaced_role_binding("prod", binding)
    assert {b.metadata.namespace for b in rbac.list_role_binding_for_all_namespaces().items} == {"prod", "staging"}
    assert review(api_client, "erin@example.com", "get", "deployments", "prod", name="api").allowed
    assert not review(api_client, "erin@example.com", "get", "deployments", "prod", name="web").allowed
    assert not review(api_client, "erin@example.com", "get", "deployments", "staging", name="api").allowed
    binding.role_ref = client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view")
    with pytest.raises(ApiException) as changed:
        rbac.replace_namespaced_role_binding("erin-reads", "prod", binding)
    assert changed.value.status == 422 and "cannot change roleRef" in status_of(changed.value)["message"]
    rbac.delete_namespaced_role_binding("erin-reads", "prod")
    assert not review(api_client, "erin@example.com", "get", "deployments", "prod", name="api").allowed
    with pytest.raises(ApiException) as missing:
        rbac.read_namespaced_role_binding("erin-reads", "prod")
    assert missing.value.status == 404


def test_reviews_evaluate_rules_subjects_and_scopes(sandbox: HookedSandbox, api_client: client.ApiClient) -> None:
    # Seeded: group sre is cluster-admin; dave rolls deployments in staging (a Role) and reads prod (ClusterRole
    # `view` through a RoleBinding, so only in prod).
    allowed = review(api_client, "alice@example.com", "patch", "deployments", "prod", groups=["sre"])
    assert allowed.allowed and 'ClusterRoleBinding "sre-admin"' in allowed.reason
    assert not review(api_client, "dave@example.com", "patch", "deployments", "prod").allowed
    assert review(api_client, "dave@example.com", "get", "deployments", "prod").allowed
    assert not review(api_client, "dave@example.com", "get", "deployments", "default").allowed
    assert not review(api_client, "dave@example.com", "list", "deployments").allowed  # cluster scope
    assert review(api_client, "dave@example.com", "patch", "deployments", "staging", subresource="scale").allowed
    # `deployments` does not cover a subresource; `*/scale` covers every scale.
    sandbox.rbac.grant("frank@example.com", ["patch"], ["deployments.apps"], "prod")
    assert not review(api_client, "frank@example.com", "patch", "deployments", "prod", subresource="scale").allowed
    sandbox.rbac.objects.put({"kind": "ClusterRole", "metadata": {"name": "scaler"},
                              "rules": [{"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["*"]}]})
    sandbox.rbac.objects.put({"kind": "ClusterRoleBinding", "metadata": {"name": "robot-scales"},
                              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                          "name": "scaler"},
                              "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "ops"}]})
    robot = "system:serviceaccount:ops:robot"
    assert review(api_client, robot, "update", "statefulsets", "prod", subresource="scale").allowed
    assert not review(api_client, robot, "update", "statefulsets", "prod").allowed
    assert not review(api_client, "system:serviceaccount:prod:robot", "update", "statefulsets", "prod",
                      subresource="scale").allowed


@pytest.fixture
def as_signoff(sandbox: HookedSandbox) -> Iterator[client.ApiClient]:
    """A caller holding exactly deploy/rbac.yaml's ClusterRole `signoff` (not yet signoff-impersonate)."""
    for doc in yaml.safe_load_all((DEPLOY / "rbac.yaml").read_text(encoding="utf-8")):
        if doc and doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            sandbox.rbac.objects.put(doc)
    sandbox.users[SA_TOKEN] = (SIGNOFF, ("system:serviceaccounts", "system:authenticated"))
    api = connect(sandbox, SA_TOKEN)
    yield api
    api.close()  # type: ignore[no-untyped-call]


def test_impersonation_needs_the_impersonate_verb(sandbox: HookedSandbox, as_signoff: client.ApiClient) -> None:
    apps = client.AppsV1Api(as_signoff)
    assert apps.read_namespaced_deployment("api", "prod").metadata.name == "api"  # its own rights
    with pytest.raises(ApiException) as listing:
        client.CoreV1Api(as_signoff).list_namespaced_secret("prod")
    assert status_of(listing.value)["message"] == (
        f'secrets is forbidden: User "{SIGNOFF}" cannot list resource "secrets" in API group "" in the namespace '
        '"prod"')

    dave = connect(sandbox, SA_TOKEN, "dave@example.com")
    with pytest.raises(ApiException) as refused:
        client.AppsV1Api(dave).read_namespaced_deployment("api", "prod")
    status = status_of(refused.value)
    assert refused.value.status == 403 and status["reason"] == "Forbidden" and status["kind"] == "Status"
    assert status["message"] == (f'users "dave@example.com" is forbidden: User "{SIGNOFF}" cannot impersonate '
                                 'resource "users" in API group "" at the cluster scope')

    # The operator binds signoff-impersonate (deploy/rbac.yaml), as `as = "requester"` needs.
    client.RbacAuthorizationV1Api(connect(sandbox, sandbox.token)).create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name="signoff-impersonate"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                      name="signoff-impersonate"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="signoff", namespace="signoff")]))
    # Now the call is judged as dave: he reads prod but may not change it, worded as the API server words it.
    assert client.AppsV1Api(dave).read_namespaced_deployment("api", "prod").metadata.name == "api"
    with pytest.raises(ApiException) as forbidden:
        client.AppsV1Api(dave).patch_namespaced_deployment("api", "prod", {"spec": {"replicas": 7}})
    status = status_of(forbidden.value)
    assert status["message"] == ('deployments.apps "api" is forbidden: User "dave@example.com" cannot patch resource '
                                 '"deployments" in API group "apps" in the namespace "prod"')
    assert (status["code"], status["reason"]) == (403, "Forbidden")
    assert status["details"] == {"name": "api", "group": "apps", "kind": "deployments"}
    deployment = sandbox.get("Deployment", "prod", "api")
    assert deployment is not None and deployment["spec"]["replicas"] != 7
    # A SelfSubjectAccessReview sent with impersonation answers for the person (`kubectl auth can-i --as`).
    own = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(verb="patch", group="apps", resource="deployments",
                                                        namespace="staging")))
    assert client.AuthorizationV1Api(dave).create_self_subject_access_review(own).status.allowed
    own.spec.resource_attributes.namespace = "prod"
    assert not client.AuthorizationV1Api(dave).create_self_subject_access_review(own).status.allowed
    # Impersonating a group is checked too; signoff-impersonate grants it.
    alice = connect(sandbox, SA_TOKEN, "alice@example.com", ("sre",))
    client.AppsV1Api(alice).patch_namespaced_deployment("api", "prod", {"spec": {"replicas": 7}})
    assert (sandbox.get("Deployment", "prod", "api") or {})["spec"]["replicas"] == 7
    # An unknown token is refused outright.
    with pytest.raises(ApiException) as unknown:
        client.AppsV1Api(connect(sandbox, "nobody")).read_namespaced_deployment("api", "prod")
    assert unknown.value.status == 401


def test_a_person_may_not_grant_more_than_they_hold(sandbox: HookedSandbox, api_client: client.ApiClient) -> None:
    dave = client.RbacAuthorizationV1Api(connect(sandbox, sandbox.token, "dave@example.com"))
    grab = client.V1RoleBinding(metadata=client.V1ObjectMeta(name="dave-admin"),
                                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                                          name="cluster-admin"),
                                subjects=[client.RbacV1Subject(kind="User", name="dave@example.com",
                                                               api_group="rbac.authorization.k8s.io")])
    with pytest.raises(ApiException) as plain:
        dave.create_namespaced_role_binding("prod", grab)
    assert status_of(plain.value)["message"] == (
        'rolebindings.rbac.authorization.k8s.io is forbidden: User "dave@example.com" cannot create resource '
        '"rolebindings" in API group "rbac.authorization.k8s.io" in the namespace "prod"')
    sandbox.rbac.grant("dave@example.com", ["create"], ["rolebindings.rbac.authorization.k8s.io"], "prod")
    with pytest.raises(ApiException) as escalating:
        dave.create_namespaced_role_binding("prod", grab)
    message = status_of(escalating.value)["message"]
    assert escalating.value.status == 403 and message.startswith(
        'rolebindings.rbac.authorization.k8s.io "dave-admin" is forbidden: user "dave@example.com" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}')
    assert sandbox.rbac.objects.find("RoleBinding", "prod", "dave-admin") is None
    assert not review(api_client, "dave@example.com", "patch", "deployments", "prod").allowed
