"""`[execution] as = "requester"` against the sandbox: the cluster is asked first (a SubjectAccessReview per verb)
and every call made for the request impersonates the requester, so the sandbox's RBAC judges each call as them
(issue 19, item 5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from adapters.kubernetes.sandbox.rbac_objects import binding
from core.domain.approvals import RequestStatus
from core.domain.changes import PreviewRefused
from core.domain.operations import Identity
from core.errors import NotAuthorized
from testkit.support import make_settings, running_app

# deploy/rbac.yaml's documents, as `kubectl apply` would create them.
DEPLOY_RBAC = list(yaml.safe_load_all((Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml").read_text()))

POLICY = """\
[execution]
as = "requester"

[people.alice]
kubernetes = "alice@example.com"
kubernetes_groups = ["ops", "sre"]
groups = ["sre"]

[people.bob]
kubernetes = "bob@example.com"
kubernetes_groups = ["sre"]
groups = ["sre"]

[people.dave]
kubernetes = "dave@example.com"
groups = ["sre"]

[people.erin]
groups = ["sre"]

[people.frank]
kubernetes = "frank@example.com"
groups = ["sre"]

[risk.medium]
quorum = 1
approvers = ["sre"]
"""


async def test_the_cluster_is_asked_first_and_sees_the_requester(sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url), policy=POLICY) as app:
        assert app.sandbox is not None
        # The seed also binds alice by name: without it only her groups can grant her anything.
        assert app.sandbox.rbac.objects.delete("ClusterRoleBinding", "", "demo-people")
        people = app.policy.people
        with pytest.raises(NotAuthorized, match=r"erin has no Kubernetes user.*kubernetes = \"<user>\""):
            await app.service.request("rollout restart deployment/api -n prod", by=people["erin"], via="console")
        with pytest.raises(NotAuthorized, match=r"does not allow dave \(dave@example.com\) to patch "
                                                r"deployments.apps/api in prod"):
            await app.service.request("rollout restart deployment/api -n prod", by=people["dave"], via="console")
        app.sandbox.inject("POST", r"subjectaccessreviews$", status=503, reason="ServiceUnavailable", times=None)
        with pytest.raises(NotAuthorized, match="never counts as allowed"):
            await app.service.request("rollout restart deployment/api -n prod", by=people["alice"], via="console")
        app.sandbox.clear_faults()
        assert await app.service.pending() == []  # nothing was stored for any of them

        request = await app.service.request("rollout restart deployment/api -n prod", by=people["alice"],
                                            via="console")
        assert request.operation.identity == Identity(user="alice@example.com", groups=("ops", "sre"))
        assert request.operation.command().endswith("--as alice@example.com --as-group ops --as-group sre")
        await app.service.sign(request.id, by=people["bob"], via="console")
        await app.settle()
        # Only `sre` is granted anything: the calls carried both groups, as two Impersonate-Group headers.
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded

        # frank may patch the deployment (the review says yes) but not read it: the dry run made when he asks is
        # made as frank and cannot read the spec, so his request is refused at once: nobody signs blind.
        app.sandbox.rbac.grant("frank@example.com", ["patch"], ["deployments.apps"], "prod")
        refused = r'as frank@example.com .*cannot get resource "deployments".*nobody signs blind'
        with pytest.raises(PreviewRefused, match=refused):
            await app.service.request("rollout restart deployment/web -n prod", by=people["frank"], via="console")
        assert await app.service.pending() == []
        # Allowed to read and patch the deployment but nothing else: the blast radius is read as frank, and the
        # sandbox's RBAC refuses its pod list as it would refuse him; the dry run, the write and verification
        # (which reads the deployment) are his to make.
        app.sandbox.rbac.grant("frank@example.com", ["get"], ["deployments.apps"], "prod")
        franks = await app.service.request("rollout restart deployment/web -n prod", by=people["frank"],
                                           via="console")
        assert franks.blast is not None
        assert 'User "frank@example.com" cannot list resource "pods"' in franks.blast.summary()
        assert franks.preview is not None and franks.preview.lines == ("restartedAt: set",)
        await app.service.sign(franks.id, by=people["bob"], via="console")
        await app.settle()
        ended = await app.service.get(franks.id)
        assert ended.status is RequestStatus.succeeded, ended.outcome
        web = app.sandbox.get("Deployment", "prod", "web")
        assert web is not None
        assert "kubectl.kubernetes.io/restartedAt" in (web["spec"]["template"]["metadata"].get("annotations") or {})


async def test_signoff_holding_only_deploy_rbac_needs_the_impersonate_binding(sqlite_database_url: str) -> None:
    """signoff's own account holds exactly deploy/rbac.yaml's ClusterRole `signoff` (the sandbox's RBAC objects judge
    it like any ServiceAccount): the review may be asked, but every impersonated call is refused until the operator
    binds `signoff-impersonate`, the rule docs/fleets.md lists."""
    account = "system:serviceaccount:signoff:signoff"
    async with running_app(make_settings(sqlite_database_url), policy=POLICY) as app:
        assert app.sandbox is not None
        for doc in DEPLOY_RBAC:
            if doc and doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                app.sandbox.rbac.objects.put(doc)
        app.sandbox.users[app.sandbox.token] = (account, ("system:serviceaccounts", "system:authenticated"))
        people = app.policy.people
        # The review is signoff's own call (deploy/rbac.yaml grants it) and still says no for dave in prod.
        with pytest.raises(NotAuthorized, match=r"does not allow dave \(dave@example.com\) to patch"):
            await app.service.request("rollout restart deployment/api -n prod", by=people["dave"], via="console")
        # Without the binding, the dry run made when alice asks (as alice) is refused by the cluster: her request
        # is refused at once, saying why, and nothing is stored (nobody signs blind).
        impersonation = f'users "alice@example.com" is forbidden: User "{account}" cannot impersonate resource "users"'
        with pytest.raises(PreviewRefused, match=re.escape(impersonation)):
            await app.service.request("rollout restart deployment/api -n prod", by=people["alice"], via="console")
        assert await app.service.pending() == []

        app.sandbox.rbac.objects.put(binding("ClusterRoleBinding", "signoff-impersonate", "ClusterRole",
                                             "signoff-impersonate", [("ServiceAccount", "signoff")], "signoff"))
        request = await app.service.request("rollout restart deployment/web -n prod", by=people["alice"],
                                            via="console")
        assert request.blast is not None and "forbidden" not in request.blast.summary()
        await app.service.sign(request.id, by=people["bob"], via="console")
        await app.settle()
        assert (await app.service.get(request.id)).status is RequestStatus.succeeded
