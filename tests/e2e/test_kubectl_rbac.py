"""The sandbox's RBAC through the real kubectl (issue 19, item 6): Role/RoleBinding objects listed and created
with kubectl, `kubectl auth can-i … --as` (a SelfSubjectAccessReview sent with impersonation headers), and a write
as a denied person shown as the API server's Forbidden. Skipped without kubectl, as in test_kubectl.py."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_kubectl import _base_env, _lines, _next, _require_kubectl

ROOT = Path(__file__).resolve().parents[2]


def test_rbac_objects_can_i_and_forbidden_with_kubectl(tmp_path: Path) -> None:
    kubectl = _require_kubectl()
    home = tmp_path / "home"
    home.mkdir()
    kubeconfig = tmp_path / "fleet.kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox", "--port", "0", "--kubeconfig", str(kubeconfig),
         "--clusters", "eu-1,us-1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_base_env(home),
    )
    env = _base_env(home) | {"KUBECONFIG": str(kubeconfig)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl, "--context", "us-1", *args], capture_output=True, text=True, env=env,
                              timeout=60, check=False)

    def can_i(*args: str) -> str:
        answered = run("auth", "can-i", *args)
        assert answered.stdout.strip() in ("yes", "no"), answered.stderr
        return answered.stdout.strip()

    try:
        lines = _lines(process)
        for _ in range(3):
            _next(lines, process)
        listed = run("get", "deploy", "-A")
        assert listed.returncode == 0 and "api" in listed.stdout, listed.stderr

        # The seeded objects, listed as kubectl lists any resource.
        bindings = run("get", "roles,rolebindings", "-n", "prod")
        assert bindings.returncode == 0, bindings.stderr
        assert "rolebinding.rbac.authorization.k8s.io/dave-views" in bindings.stdout
        cluster_wide = run("get", "clusterrolebindings")
        assert "cluster-admin" in cluster_wide.stdout and "sre-admin" in cluster_wide.stdout, cluster_wide.stderr

        # alice (and group `sre`) are cluster-admin; dave may only read prod, and roll deployments in staging.
        assert can_i("patch", "deployments", "-n", "prod", "--as", "alice@example.com") == "yes"
        assert can_i("patch", "deployments", "-n", "prod", "--as", "erin@example.com", "--as-group", "sre") == "yes"
        assert can_i("patch", "deployments", "-n", "prod", "--as", "erin@example.com") == "no"
        assert can_i("patch", "deployments", "-n", "prod", "--as", "dave@example.com") == "no"
        assert can_i("get", "deployments", "-n", "prod", "--as", "dave@example.com") == "yes"
        assert can_i("patch", "deployments", "-n", "staging", "--as", "dave@example.com") == "yes"
        assert can_i("patch", "deployments", "-n", "prod") == "yes"  # the kubeconfig's own user: system:masters
        rules = run("auth", "can-i", "--list", "-n", "prod", "--as", "dave@example.com")  # SelfSubjectRulesReview
        assert rules.returncode == 0, rules.stderr
        assert [line.split("[]")[-1].strip() for line in rules.stdout.splitlines()
                if line.startswith("deployments.apps ")] == ["[get list watch]"]

        whoami = run("auth", "whoami", "--as", "dave@example.com", "--as-group", "staff")  # a SelfSubjectReview
        assert whoami.returncode == 0, whoami.stderr
        assert "dave@example.com" in whoami.stdout and "[staff system:authenticated]" in whoami.stdout

        denied = run("--as", "dave@example.com", "scale", "deployment/web", "-n", "prod", "--replicas=3")
        assert denied.returncode != 0
        assert ('Error from server (Forbidden): deployments.apps "web" is forbidden: User "dave@example.com" cannot '
                'patch resource "deployments/scale" in API group "apps" in the namespace "prod"') in denied.stderr, \
            denied.stderr
        patched = run("--as", "dave@example.com", "patch", "deployment", "web", "-n", "prod", "--type=merge", "-p",
                      '{"spec":{"replicas":3}}')
        assert ('Error from server (Forbidden): deployments.apps "web" is forbidden: User "dave@example.com" cannot '
                'patch resource "deployments" in API group "apps" in the namespace "prod"') in patched.stderr

        # A RoleBinding created with kubectl (protobuf on the wire) takes effect at once; deleting it undoes it.
        created = run("create", "rolebinding", "dave-deploys", "--clusterrole=edit-deployments",
                      "--user=dave@example.com", "-n", "prod")
        assert created.returncode == 0, created.stderr
        assert can_i("patch", "deployments", "-n", "prod", "--as", "dave@example.com") == "no"  # no such role yet
        role = run("create", "clusterrole", "edit-deployments", "--verb=get,list,patch",
                   "--resource=deployments.apps")
        assert role.returncode == 0, role.stderr
        assert can_i("patch", "deployments", "-n", "prod", "--as", "dave@example.com") == "yes"
        assert can_i("patch", "deployments", "-n", "default", "--as", "dave@example.com") == "no"
        again = run("--as", "dave@example.com", "patch", "deployment", "web", "-n", "prod", "--type=merge", "-p",
                    '{"spec":{"replicas":3}}')
        assert again.returncode == 0, again.stderr
        shown = run("get", "rolebinding", "dave-deploys", "-n", "prod", "-o", "jsonpath={.roleRef.name} "
                    "{.subjects[0].kind}:{.subjects[0].name}")
        assert shown.stdout == "edit-deployments User:dave@example.com", shown.stderr
        assert run("delete", "rolebinding", "dave-deploys", "-n", "prod").returncode == 0
        assert can_i("patch", "deployments", "-n", "prod", "--as", "dave@example.com") == "no"
        # deploy/rbac.yaml applied as in a real cluster (the sandbox serves no OpenAPI to validate against):
        # signoff's ServiceAccount may ask reviews, and may impersonate only once signoff-impersonate is bound.
        applied = run("apply", "--validate=false", "-f", str(ROOT / "deploy" / "rbac.yaml"))
        assert applied.returncode == 0, applied.stderr
        account = "system:serviceaccount:signoff:signoff"
        assert can_i("create", "subjectaccessreviews.authorization.k8s.io", "--as", account) == "yes"
        assert can_i("impersonate", "users", "--as", account) == "no"
        bound = run("create", "clusterrolebinding", "signoff-impersonate", "--clusterrole=signoff-impersonate",
                    "--serviceaccount=signoff:signoff")
        assert bound.returncode == 0, bound.stderr
        assert can_i("impersonate", "users", "--as", account) == "yes"
        assert can_i("impersonate", "groups", "--as", account) == "yes"
        # Clusters are independent: the binding never existed on eu-1.
        other = subprocess.run([kubectl, "--context", "eu-1", "get", "clusterrole", "edit-deployments"],
                               capture_output=True, text=True, env=env, timeout=60, check=False)
        assert other.returncode != 0 and "NotFound" in other.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
