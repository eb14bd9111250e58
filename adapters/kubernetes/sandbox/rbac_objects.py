"""Role, ClusterRole, RoleBinding and ClusterRoleBinding (`rbac.authorization.k8s.io/v1`) as API objects.

The sandbox keeps them in their own small store and serves them on the real paths (create, get, list,
update, patch, delete; namespaced and cluster-scoped), so `kubectl get roles,rolebindings -n prod` and
`kubectl create rolebinding …` work, and the authorizer (rbac.py) evaluates exactly these objects.
`seed` writes the built-in roles a real cluster has (cluster-admin, view, system:basic-user) and the demo
people's bindings: group `sre` and alice, bob and carol (@example.com) are cluster-admin; dave@example.com may
roll deployments in `staging` and only read in `prod`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from adapters.kubernetes.sandbox.common import JSON, _clone, _now, _ts
from adapters.kubernetes.sandbox.errors import (
    _METHOD_NOT_ALLOWED,
    _ApiError,
    _bad_request,
    _invalid,
    _invalid_value,
    _path_not_found,
    _required,
)
from adapters.kubernetes.sandbox.patch import _json_patch, _merge_patch, _PatchError
from adapters.kubernetes.sandbox.rbac_protobuf import decode
from adapters.kubernetes.sandbox.resources import _Resource

GROUP = "rbac.authorization.k8s.io"
PREFIX = f"/apis/{GROUP}/v1"
AUTHZ_GROUP = "authorization.k8s.io"
AUTHN_GROUP = "authentication.k8s.io"
WHOAMI_PATH = f"/apis/{AUTHN_GROUP}/v1/selfsubjectreviews"
_VERBS = ("create", "delete", "get", "list", "patch", "update")
KINDS: dict[str, _Resource] = {
    "roles": _Resource("roles", "role", "Role", GROUP, True, _VERBS, has_status=False),
    "rolebindings": _Resource("rolebindings", "rolebinding", "RoleBinding", GROUP, True, _VERBS, has_status=False),
    "clusterroles": _Resource("clusterroles", "clusterrole", "ClusterRole", GROUP, False, _VERBS,
                              has_status=False),
    "clusterrolebindings": _Resource("clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", GROUP,
                                     False, _VERBS, has_status=False),
}
_BY_KIND = {r.kind: r for r in KINDS.values()}
# Why the caller may not store this Role or binding (permissions it does not hold), or None: rbac.py.
Guard = Callable[[JSON], str | None]


def _discovered(resource: _Resource) -> JSON:
    return {"name": resource.plural, "singularName": resource.singular, "namespaced": resource.namespaced,
            "kind": resource.kind, "verbs": list(resource.verbs), "shortNames": []}


def _review(plural: str, kind: str) -> JSON:
    return {"name": plural, "singularName": plural.removesuffix("s"), "namespaced": False, "kind": kind,
            "verbs": ["create"]}


DISCOVERY: dict[str, JSON] = {
    PREFIX: {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/v1",
             "resources": [_discovered(r) for r in KINDS.values()]},
    f"/apis/{AUTHZ_GROUP}/v1": {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{AUTHZ_GROUP}/v1",
        "resources": [_review("subjectaccessreviews", "SubjectAccessReview"),
                      _review("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
                      _review("selfsubjectrulesreviews", "SelfSubjectRulesReview")]},
    f"/apis/{AUTHN_GROUP}/v1": {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{AUTHN_GROUP}/v1",
        "resources": [_review("selfsubjectreviews", "SelfSubjectReview")]},
}


def whoami(user: str, groups: tuple[str, ...]) -> JSON:
    """A SelfSubjectReview (`kubectl auth whoami`): who the API server judges the call as."""
    return {"apiVersion": f"{AUTHN_GROUP}/v1", "kind": "SelfSubjectReview", "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": user, "groups": list(groups)}}}


def with_groups(payload: JSON) -> JSON:
    """The `/apis` APIGroupList, with the two groups this module serves added."""
    groups = list(payload.get("groups") or [])
    for name in (GROUP, AUTHZ_GROUP, AUTHN_GROUP):
        version = {"groupVersion": f"{name}/v1", "version": "v1"}
        groups.append({"name": name, "versions": [version], "preferredVersion": version})
    return {**payload, "groups": groups}


class RbacObjects:
    """The RBAC objects of one sandbox cluster, with their own lock and resourceVersions."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str], JSON] = {}  # (kind, namespace or "", name)
        self._version = 1
        self._guard: Guard | None = None  # the current call's (handle is called under the server's lock)

    # ---- direct access (the authorizer, seeding, tests)

    def put(self, obj: JSON) -> JSON:
        """Add or replace an object; returns the stored copy."""
        with self._lock:
            meta = obj.setdefault("metadata", {})
            resource = _BY_KIND[str(obj.get("kind"))]
            obj["apiVersion"] = f"{GROUP}/v1"
            if not resource.namespaced:
                meta.pop("namespace", None)
            key = (resource.kind, str(meta.get("namespace", "")), str(meta["name"]))
            old = self._objects.get(key)
            kept = (old or {}).get("metadata", {})
            meta["uid"] = meta.get("uid") or kept.get("uid") or str(uuid.uuid4())
            meta["creationTimestamp"] = meta.get("creationTimestamp") or kept.get("creationTimestamp") or _ts(_now())
            self._version += 1
            meta["resourceVersion"] = str(self._version)
            self._objects[key] = _clone(obj)
            return _clone(obj)

    def find(self, kind: str, namespace: str, name: str) -> JSON | None:
        with self._lock:
            return self._objects.get((kind, namespace, name))

    def each(self, kind: str, namespace: str | None = None) -> Iterator[JSON]:
        """The stored objects of a kind (not copies: read them, do not change them)."""
        with self._lock:
            found = [o for (k, ns, _), o in self._objects.items() if k == kind and namespace in (None, ns)]
        yield from found

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        with self._lock:
            return self._objects.pop((kind, namespace, name), None) is not None

    # ---- HTTP

    def handle(self, method: str, path: str, query: Mapping[str, str], content_type: str,
               body: bytes, guard: Guard | None = None) -> tuple[int, JSON] | None:
        """The answer to a call under /apis/rbac.authorization.k8s.io/v1 (None: not such a path)."""
        if not path.startswith(PREFIX + "/"):
            return None
        try:
            self._guard = guard
            return self._handle(method, path, query, content_type, body)
        except _ApiError as error:
            return error.code, error.status()

    def _handle(self, method: str, path: str, query: Mapping[str, str], content_type: str,
                body: bytes) -> tuple[int, JSON]:
        rest = [p for p in path[len(PREFIX):].split("/") if p]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        resource = KINDS.get(rest[0]) if rest else None
        if resource is None or len(rest) > 2 or (namespace is not None and not resource.namespaced) or \
                (namespace is None and resource.namespaced and (len(rest) > 1 or method != "GET")):
            raise _path_not_found()  # namespaced objects are listed across namespaces, never addressed without one
        name = rest[1] if len(rest) > 1 else None
        dry_run = query.get("dryRun") == "All"
        if name is None:
            if method == "GET" and query.get("watch") in ("true", "1"):
                raise _bad_request("the sandbox API server does not watch RBAC objects; list them instead")
            if method == "GET":
                return 200, self._list(resource, namespace)
            if method == "POST":
                return 201, self._create(resource, namespace or "", self._body(body, content_type), dry_run)
            raise _METHOD_NOT_ALLOWED
        key = (resource.kind, namespace or "", name)
        current = self.find(*key)
        if current is None:
            raise _ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found', name=name, group=GROUP,
                            kind=resource.plural)
        if method == "GET":
            return 200, _clone(current)
        if method == "DELETE":
            if not dry_run:
                self.delete(*key)
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {"name": name, "group": GROUP, "kind": resource.plural}}
        if method == "PUT":
            return 200, self._store(resource, namespace or "", self._body(body, content_type), dry_run, current)
        if method == "PATCH":
            try:
                patch = json.loads(body or b"{}")
                changed = _json_patch(_clone(current), patch) if content_type == "application/json-patch+json" \
                    else _merge_patch(_clone(current), patch)
            except (ValueError, _PatchError) as error:
                raise _bad_request(f"the patch could not be applied: {error}") from error
            return 200, self._store(resource, namespace or "", changed, dry_run, current)
        raise _METHOD_NOT_ALLOWED

    @staticmethod
    def _body(body: bytes, content_type: str) -> JSON:
        try:
            # kubectl's typed clients (`kubectl create rolebinding`) write protobuf.
            parsed: Any = decode(body) if "protobuf" in content_type else json.loads(body or b"{}")
        except ValueError as error:
            raise _bad_request(f"the request body could not be read: {error}") from error
        if not isinstance(parsed, dict):
            raise _bad_request("the request body is not an object")
        return parsed

    def _list(self, resource: _Resource, namespace: str | None) -> JSON:
        items = sorted((_clone(o) for o in self.each(resource.kind, namespace)),
                       key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return {"kind": f"{resource.kind}List", "apiVersion": f"{GROUP}/v1",
                "metadata": {"resourceVersion": str(self._version)}, "items": items}

    def _create(self, resource: _Resource, namespace: str, obj: JSON, dry_run: bool) -> JSON:
        name = str((obj.get("metadata") or {}).get("name", ""))
        if name and self.find(resource.kind, namespace, name) is not None:
            raise _ApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists', name=name,
                            group=GROUP, kind=resource.plural)
        return self._store(resource, namespace, obj, dry_run, None)

    def _store(self, resource: _Resource, namespace: str, obj: JSON, dry_run: bool, current: JSON | None) -> JSON:
        obj = _clone(obj)
        obj["kind"] = resource.kind
        meta = obj.setdefault("metadata", {})
        name = str(meta.get("name", ""))
        if not name:
            raise _invalid(resource, "", [_required("metadata.name", "name or generateName is required")])
        if resource.namespaced:
            meta["namespace"] = namespace
        if resource.kind.endswith("Binding"):
            ref = obj.get("roleRef") or {}
            if not ref.get("name") or ref.get("kind") not in ("Role", "ClusterRole"):
                raise _invalid(resource, name, [_required("roleRef", "kind Role or ClusterRole and a name")])
            if current is not None and current.get("roleRef") != ref:
                raise _invalid(resource, name, [_invalid_value("roleRef", ref, "cannot change roleRef")])
        if current is None:  # the server sets these on create, whatever the body says
            for key in ("uid", "resourceVersion", "creationTimestamp"):
                meta.pop(key, None)
        else:
            sent = meta.get("resourceVersion")
            if sent and sent != current["metadata"]["resourceVersion"]:
                raise _ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource.qualified} "{name}": '
                                "the object has been modified; please apply your changes to the latest version "
                                "and try again", name=name, group=GROUP, kind=resource.plural)
            meta.pop("resourceVersion", None)
            meta["uid"] = current["metadata"]["uid"]
            meta["creationTimestamp"] = current["metadata"]["creationTimestamp"]
        refused = self._guard(obj) if self._guard is not None else None
        if refused is not None:  # the API server's escalation check
            raise _ApiError(403, "Forbidden", f'{resource.qualified} "{name}" is forbidden: {refused}', name=name,
                            group=GROUP, kind=resource.plural)
        if dry_run:
            return obj
        return self.put(obj)


# ---- seeding

_READ = ["get", "list", "watch"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> JSON:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def role(kind: str, name: str, rules: list[JSON], namespace: str = "") -> JSON:
    meta: JSON = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, "rules": rules}


def binding(kind: str, name: str, role_kind: str, role_name: str, subjects: list[tuple[str, str]],
            namespace: str = "") -> JSON:
    """A (Cluster)RoleBinding; subjects as (kind, name) pairs: ("User", "alice@example.com"), ("Group", "sre")."""
    meta: JSON = {"name": name, **({"namespace": namespace} if namespace else {})}
    listed = [{"kind": k, "name": n, **({"apiGroup": GROUP} if k != "ServiceAccount" else {"namespace": namespace})}
              for k, n in subjects]
    return {"kind": kind, "metadata": meta, "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role_name},
            "subjects": listed}


def seed_builtin(objects: RbacObjects) -> None:
    """What every cluster has: cluster-admin for system:masters (the sandbox's own kubeconfig user), `view`,
    and system:basic-user (anyone signed in may ask what they themselves may do)."""
    objects.put(role("ClusterRole", "cluster-admin", [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"],
                                                                                    "verbs": ["*"]}]))
    objects.put(binding("ClusterRoleBinding", "cluster-admin", "ClusterRole", "cluster-admin",
                        [("Group", "system:masters")]))
    objects.put(role("ClusterRole", "view", [
        _rule([""], ["pods", "services", "persistentvolumeclaims", "namespaces", "events"], _READ),
        _rule(["apps"], ["deployments", "deployments/scale", "statefulsets", "daemonsets", "replicasets"], _READ),
        _rule(["policy"], ["poddisruptionbudgets"], _READ)]))
    objects.put(role("ClusterRole", "system:basic-user", [
        _rule([AUTHZ_GROUP], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
        _rule([AUTHN_GROUP], ["selfsubjectreviews"], ["create"])]))
    objects.put(binding("ClusterRoleBinding", "system:basic-user", "ClusterRole", "system:basic-user",
                        [("Group", "system:authenticated")]))


def seed_demo(objects: RbacObjects) -> None:
    """The demo people: group `sre` and alice, bob, carol are cluster-admin; dave@example.com rolls deployments in
    `staging` and may only read `prod`, so the cluster refuses him any change there."""
    objects.put(binding("ClusterRoleBinding", "sre-admin", "ClusterRole", "cluster-admin", [("Group", "sre")]))
    # The sre people by name too, so `kubectl auth can-i … --as alice@example.com` says yes without --as-group.
    objects.put(binding("ClusterRoleBinding", "demo-people", "ClusterRole", "cluster-admin",
                        [("User", f"{name}@example.com") for name in ("alice", "bob", "carol")]))
    objects.put(role("Role", "deployer", [
        _rule(["apps"], ["deployments", "deployments/scale"], [*_READ, "patch", "update"]),
        _rule([""], ["pods"], _READ)], "staging"))
    objects.put(binding("RoleBinding", "dave-deployer", "Role", "deployer", [("User", "dave@example.com")],
                        "staging"))
    objects.put(binding("RoleBinding", "dave-views", "ClusterRole", "view", [("User", "dave@example.com")], "prod"))
