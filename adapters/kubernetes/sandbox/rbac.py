"""The sandbox's authorizer: RBAC evaluated as a real API server does, from the Role, ClusterRole, RoleBinding
and ClusterRoleBinding objects in rbac_objects.py.

Every call is judged as its user: the bearer token's holder (the sandbox's own kubeconfig user,
`sandbox-admin` in `system:masters`, which like a real cluster's is never refused), or, with
`Impersonate-User` / `Impersonate-Group`, the person impersonated, which the caller may do only when its RBAC
grants the `impersonate` verb on `users` / `groups` / `serviceaccounts`. A refusal is the API server's 403
`Forbidden` Status, worded as a real one is. `SubjectAccessReview` and `SelfSubjectAccessReview` are answered
from the same objects, and nobody may store a Role or binding granting more than they hold (`escalate`, `bind`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from adapters.kubernetes.sandbox.common import JSON
from adapters.kubernetes.sandbox.errors import _status_object
from adapters.kubernetes.sandbox.rbac_objects import (
    AUTHZ_GROUP,
    GROUP,
    RbacObjects,
    binding,
    role,
    seed_builtin,
    seed_demo,
)

SAR_PATH = f"/apis/{AUTHZ_GROUP}/v1/subjectaccessreviews"
SSAR_PATH = f"/apis/{AUTHZ_GROUP}/v1/selfsubjectaccessreviews"
SSRR_PATH = f"/apis/{AUTHZ_GROUP}/v1/selfsubjectrulesreviews"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
_VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


@dataclass(frozen=True)
class Attributes:
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str

    @property
    def qualified(self) -> str:
        base = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{base}/{self.subresource}" if self.subresource else base


def attributes_of(method: str, path: str, query: Mapping[str, str]) -> Attributes | None:
    """The RBAC attributes of an API request (None: not a resource path, like /version or discovery)."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = ""
    if len(rest) > 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    resource, name, subresource = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
    if method == "GET":
        verb = "watch" if query.get("watch") in ("true", "1") else ("get" if name else "list")
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    else:
        verb = _VERBS.get(method, method.lower())
    return Attributes(verb, group, resource, subresource, namespace, name)


def _rule_allows(rule: JSON, a: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and a.verb not in verbs:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and a.group not in groups:
        return False
    resources = rule.get("resources") or []
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    if not any(r in ("*", combined) or (a.subresource and r == f"*/{a.subresource}") for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _subject_matches(subject: JSON, user: str, groups: Sequence[str], namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        return user == f"system:serviceaccount:{subject.get('namespace') or namespace}:{name}"
    return False


def _subject_text(subject: JSON) -> str:
    return f"{subject.get('kind')} \"{subject.get('name')}\""


class Rbac:
    """Who may do what in one sandbox cluster: the RBAC objects (`objects`) and their evaluation."""

    def __init__(self) -> None:
        self.objects = RbacObjects()
        seed_builtin(self.objects)
        self._grants = 0

    def seed(self) -> None:
        seed_demo(self.objects)

    def grant(self, subject: str, verbs: Iterable[str], resources: Iterable[str],
              namespace: str | None = None) -> None:
        """A shortcut for tests: a Role (or ClusterRole, namespace None) and its binding to `subject`
        (`alice@example.com`, or `group:sre`). `resources` as `deployments.apps`, `deployments.apps/scale`, `*`."""
        self._grants += 1
        rules = []
        for resource in resources:
            if resource == "*":
                rules.append({"apiGroups": ["*"], "resources": ["*"], "verbs": list(verbs)})
                continue
            base, _, sub = resource.partition("/")
            plural, _, group = base.partition(".")
            rules.append({"apiGroups": [group], "resources": [f"{plural}/{sub}" if sub else plural],
                          "verbs": list(verbs)})
        kind, name = ("Group", subject[6:]) if subject.startswith("group:") else ("User", subject)
        scope = "" if namespace is None else namespace
        prefix = "Cluster" if namespace is None else ""
        self.objects.put(role(f"{prefix}Role", f"grant-{self._grants}", rules, scope))
        self.objects.put(binding(f"{prefix}RoleBinding", f"grant-{self._grants}", f"{prefix}Role",
                                 f"grant-{self._grants}", [(kind, name)], scope))

    # ---- evaluation

    def decide(self, user: str, groups: Sequence[str], a: Attributes) -> tuple[bool, str]:
        """(allowed, reason), as the RBAC authorizer words its reason."""
        if MASTERS in groups:
            return True, f"allowed: User \"{user}\" is in the group \"{MASTERS}\""
        for crb in self.objects.each("ClusterRoleBinding"):
            found = self._allowed_by(crb, "ClusterRoleBinding", user, groups, a, "")
            if found:
                return True, found
        if a.namespace:
            for rb in self.objects.each("RoleBinding", a.namespace):
                found = self._allowed_by(rb, "RoleBinding", user, groups, a, a.namespace)
                if found:
                    return True, found
        return False, ""

    def _allowed_by(self, bound: JSON, kind: str, user: str, groups: Sequence[str], a: Attributes,
                    namespace: str) -> str:
        subject = next((s for s in bound.get("subjects") or [] if _subject_matches(s, user, groups, namespace)),
                       None)
        if subject is None:
            return ""
        ref = bound.get("roleRef") or {}
        ref_kind, ref_name = str(ref.get("kind", "")), str(ref.get("name", ""))
        target = self.objects.find(ref_kind, namespace if ref_kind == "Role" else "", ref_name)
        if target is None or not any(_rule_allows(r, a) for r in target.get("rules") or []):
            return ""
        where = f"{kind} \"{bound['metadata']['name']}" + (f"/{namespace}\"" if namespace else "\"")
        return f"RBAC: allowed by {where} of {ref_kind} \"{ref_name}\" to {_subject_text(subject)}"

    def allows(self, user: str, groups: Iterable[str], attributes: Attributes) -> bool:
        return self.decide(user, list(groups), attributes)[0]

    # ---- escalation: nobody grants what they do not hold (unless they may `bind` / `escalate`)

    def escalation(self, user: str, groups: Sequence[str], obj: JSON) -> str | None:
        """Why storing this Role or binding would grant permissions `user` does not hold; None when it would not."""
        if MASTERS in groups:
            return None
        kind = str(obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        if kind.endswith("Binding"):
            ref = obj.get("roleRef") or {}
            ref_kind, ref_name = str(ref.get("kind", "")), str(ref.get("name", ""))
            plural = "clusterroles" if ref_kind == "ClusterRole" else "roles"
            if self.allows(user, groups, Attributes("bind", GROUP, plural, "", namespace, ref_name)):
                return None
            target = self.objects.find(ref_kind, namespace if ref_kind == "Role" else "", ref_name)
            rules = (target or {}).get("rules") or []
        else:
            plural = "clusterroles" if kind == "ClusterRole" else "roles"
            if self.allows(user, groups, Attributes("escalate", GROUP, plural, "", namespace, str(meta.get("name")))):
                return None
            rules = obj.get("rules") or []
        missing = [r for r in rules if not self._holds(user, groups, r, namespace)]
        if not missing:
            return None
        return (f"user \"{user}\" (groups={_go_list(groups)}) is attempting to grant RBAC permissions not currently "
                "held:\n" + "\n".join(_rule_text(r) for r in missing))

    def _holds(self, user: str, groups: Sequence[str], rule: JSON, namespace: str) -> bool:
        """Whether every permission of `rule` is the user's already (wildcards count only as wildcards)."""
        verbs = rule.get("verbs") or []
        if rule.get("nonResourceURLs"):
            held = [r for r in self._cluster_rules(user, groups) if r.get("nonResourceURLs")]
            return all(any(("*" in r.get("verbs", []) or v in r.get("verbs", []))
                           and any(u == url or (u.endswith("*") and url.startswith(u[:-1]))
                                   for u in r["nonResourceURLs"]) for r in held)
                       for url in rule["nonResourceURLs"] for v in verbs)
        return all(self.allows(user, groups, Attributes(v, g, r.partition("/")[0], r.partition("/")[2], namespace, n))
                   for g in rule.get("apiGroups") or [] for r in rule.get("resources") or [] for v in verbs
                   for n in rule.get("resourceNames") or [""])

    def _cluster_rules(self, user: str, groups: Sequence[str]) -> list[JSON]:
        found: list[JSON] = []
        for crb in self.objects.each("ClusterRoleBinding"):
            if any(_subject_matches(s, user, groups, "") for s in crb.get("subjects") or []):
                target = self.objects.find("ClusterRole", "", str((crb.get("roleRef") or {}).get("name", "")))
                found += (target or {}).get("rules") or []
        return found

    # ---- the API server's answers

    def forbidden(self, user: str, groups: Iterable[str], method: str, path: str,
                  query: Mapping[str, str]) -> JSON | None:
        """The 403 Status for a call its user may not make; None when allowed."""
        attributes = attributes_of(method, path, query)
        if attributes is None or self.allows(user, groups, attributes):
            return None
        return forbidden_status(user, attributes)

    def impersonation_refused(self, caller: str, caller_groups: Sequence[str], user: str,
                              groups: Sequence[str]) -> JSON | None:
        """The 403 Status when `caller` may not impersonate `user` (and `groups`); None when it may."""
        wanted: list[Attributes] = []
        if user.startswith("system:serviceaccount:") and user.count(":") == 3:
            _, _, namespace, name = user.split(":")
            wanted.append(Attributes("impersonate", "", "serviceaccounts", "", namespace, name))
        else:
            wanted.append(Attributes("impersonate", "", "users", "", "", user))
        wanted += [Attributes("impersonate", "", "groups", "", "", g) for g in groups]
        for attributes in wanted:
            if not self.allows(caller, caller_groups, attributes):
                return forbidden_status(caller, attributes)
        return None

    def review(self, body: JSON, self_user: tuple[str, Sequence[str]] | None = None) -> JSON:
        """A SubjectAccessReview answered (or, with `self_user`, a SelfSubjectAccessReview as that user)."""
        spec = dict(body.get("spec") or {})
        found = spec.get("resourceAttributes") or {}
        attributes = Attributes(str(found.get("verb", "")), str(found.get("group", "")),
                                str(found.get("resource", "")), str(found.get("subresource", "")),
                                str(found.get("namespace", "")), str(found.get("name", "")))
        user, groups = self_user if self_user is not None else (str(spec.get("user", "")),
                                                                list(spec.get("groups") or []))
        allowed, reason = self.decide(user, list(groups), attributes) if found else (False, "")
        status: JSON = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        kind = "SelfSubjectAccessReview" if self_user is not None else "SubjectAccessReview"
        return {"apiVersion": f"{AUTHZ_GROUP}/v1", "kind": kind, "metadata": {"creationTimestamp": None},
                "spec": spec, "status": status}

    def rules_review(self, body: JSON, user: str, groups: Sequence[str]) -> JSON:
        """A SelfSubjectRulesReview (`kubectl auth can-i --list`): the rules bound to the user in a namespace."""
        spec = dict(body.get("spec") or {})
        namespace = str(spec.get("namespace", ""))
        resource_rules: list[JSON] = []
        other: list[JSON] = []
        found = [("ClusterRoleBinding", b, "") for b in self.objects.each("ClusterRoleBinding")]
        found += [("RoleBinding", b, namespace) for b in self.objects.each("RoleBinding", namespace)] \
            if namespace else []
        for _, bound, where in found:
            if MASTERS not in groups and not any(_subject_matches(s, user, groups, where)
                                                 for s in bound.get("subjects") or []):
                continue
            ref = bound.get("roleRef") or {}
            target = self.objects.find(str(ref.get("kind")), where if ref.get("kind") == "Role" else "",
                                       str(ref.get("name")))
            for rule in (target or {}).get("rules") or []:
                (other if "nonResourceURLs" in rule else resource_rules).append(
                    {k: v for k, v in rule.items() if k != "nonResourceURLs"} if "nonResourceURLs" not in rule
                    else {"verbs": rule.get("verbs") or [], "nonResourceURLs": rule["nonResourceURLs"]})
        return {"apiVersion": f"{AUTHZ_GROUP}/v1", "kind": "SelfSubjectRulesReview",
                "metadata": {"creationTimestamp": None}, "spec": spec,
                "status": {"resourceRules": resource_rules, "nonResourceRules": other, "incomplete": False}}


def forbidden_status(user: str, a: Attributes) -> JSON:
    """`deployments.apps "api" is forbidden: User "bob@example.com" cannot patch resource "deployments" in API
    group "apps" in the namespace "prod"`: a real API server's 403."""
    what = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    shown = f"{a.resource}.{a.group}" if a.group else a.resource
    subject = f"{shown} \"{a.name}\"" if a.name else shown
    where = f"in the namespace \"{a.namespace}\"" if a.namespace else "at the cluster scope"
    message = (f"{subject} is forbidden: User \"{user}\" cannot {a.verb} resource \"{what}\" in API "
               f"group \"{a.group}\" {where}")
    details: JSON = {"group": a.group, "kind": a.resource}
    if a.name:
        details["name"] = a.name
    return _status_object(403, "Forbidden", message, details)


def _go_list(values: Iterable[str]) -> str:
    return "[" + " ".join(f"\"{v}\"" for v in values) + "]"


def _rule_text(rule: JSON) -> str:
    """A PolicyRule as the API server prints it in an escalation refusal."""
    parts = [f"{label}:{_go_list(rule[key])}" for key, label in (
        ("apiGroups", "APIGroups"), ("resources", "Resources"), ("resourceNames", "ResourceNames"),
        ("nonResourceURLs", "NonResourceURLs"), ("verbs", "Verbs")) if rule.get(key)]
    return "{" + ", ".join(parts) + "}"
