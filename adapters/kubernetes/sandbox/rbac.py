"""Who may do what in the sandbox, for impersonated calls and SubjectAccessReviews.

The holder of the sandbox's bearer token is its administrator (it may impersonate anyone). A call with
`Impersonate-User` (and `Impersonate-Group`) is then judged as that person, against grants: a verb on a
resource (`deployments.apps`, `deployments.apps/scale`, `*`), in a namespace or everywhere. A refusal is the
API server's 403 `Forbidden` Status, worded as a real one is. Grants are kept in memory (`grant`), not as
Role and RoleBinding objects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from adapters.kubernetes.sandbox.common import JSON
from adapters.kubernetes.sandbox.errors import _status_object

SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
_VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


@dataclass(frozen=True)
class Grant:
    subject: str  # `alice@example.com`, or `group:sre`
    verbs: frozenset[str]
    resources: frozenset[str]  # `deployments.apps`, `deployments.apps/scale`, `pods`, `*`
    namespace: str | None  # None: every namespace and the cluster scope

    def allows(self, verb: str, resource: str, namespace: str) -> bool:
        if self.namespace is not None and self.namespace != namespace:
            return False
        return ("*" in self.verbs or verb in self.verbs) and ("*" in self.resources or resource in self.resources)


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
    """The RBAC attributes of an API request (None: not a resource path, like /version)."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    resource, name, subresource = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
    if method == "GET":
        verb = "watch" if query.get("watch") in ("true", "1") else ("get" if name else "list")
    else:
        verb = _VERBS.get(method, method.lower())
    return Attributes(verb, group, resource, subresource, namespace, name)


class Rbac:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grants: list[Grant] = []

    def grant(self, subject: str, verbs: Iterable[str], resources: Iterable[str],
              namespace: str | None = None) -> None:
        with self._lock:
            self._grants.append(Grant(subject, frozenset(verbs), frozenset(resources), namespace))

    def seed(self) -> None:
        """The demo people: `sre` may do anything anywhere; dave@example.com only in `staging`."""
        self.grant("group:sre", ["*"], ["*"])
        self.grant("dave@example.com", ["get", "list", "watch", "patch"], ["deployments.apps",
                                                                         "deployments.apps/scale"], "staging")

    def allows(self, user: str, groups: Iterable[str], attributes: Attributes) -> bool:
        subjects = {user, *(f"group:{g}" for g in groups)}
        with self._lock:
            return any(g.subject in subjects and g.allows(attributes.verb, attributes.qualified, attributes.namespace)
                       for g in self._grants)

    def forbidden(self, user: str, groups: Iterable[str], method: str, path: str,
                  query: Mapping[str, str]) -> JSON | None:
        """The 403 Status for an impersonated call its subject may not make; None when allowed."""
        attributes = attributes_of(method, path, query)
        if attributes is None or self.allows(user, groups, attributes):
            return None
        what = f"{attributes.resource}/{attributes.subresource}" if attributes.subresource else attributes.resource
        shown = f"{attributes.resource}.{attributes.group}" if attributes.group else attributes.resource
        subject = f"{shown} \"{attributes.name}\"" if attributes.name else shown
        where = (f"in the namespace \"{attributes.namespace}\"" if attributes.namespace else "at the cluster scope")
        message = (f"{subject} is forbidden: User \"{user}\" cannot {attributes.verb} resource \"{what}\" in API "
                   f"group \"{attributes.group}\" {where}")
        details: JSON = {"group": attributes.group, "kind": attributes.resource}
        if attributes.name:
            details["name"] = attributes.name
        return _status_object(403, "Forbidden", message, details)

    def review(self, body: JSON) -> JSON:
        """A SubjectAccessReview answered: `status.allowed`."""
        spec = body.get("spec") or {}
        found = spec.get("resourceAttributes") or {}
        attributes = Attributes(str(found.get("verb", "")), str(found.get("group", "")),
                                str(found.get("resource", "")), str(found.get("subresource", "")),
                                str(found.get("namespace", "")), str(found.get("name", "")))
        allowed = self.allows(str(spec.get("user", "")), spec.get("groups") or [], attributes)
        status: JSON = {"allowed": allowed}
        if not allowed:
            status["reason"] = "no grant allows it"
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "metadata": {},
                "spec": spec, "status": status}
