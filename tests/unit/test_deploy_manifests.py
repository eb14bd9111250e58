"""The manifests in deploy/: they parse, run signoff the way docs/design.md §4 says, and the
ClusterRole grants exactly the API calls the executor can make, nothing missing, nothing extra.

The RBAC check reads adapters/kubernetes/executor.py and blast.py with `ast` (nothing is run):
every attribute taken on an object that holds a Kubernetes API class (`self._apps =
client.AppsV1Api(...)`, or a parameter annotated `client.CoreV1Api`) is a client method the code
can call, including the ones passed along in tables (`patchers[...]`) or handed to the raw-JSON
reader (`_preload_content=False`). Each method becomes (API group, resource[/subresource], verb)
by the client's naming convention, and that answer is checked against the path and HTTP method
the client itself sends (its generated `_<method>_serialize`), so the table cannot drift from the
client. A method or raw call the table does not know fails the test: extend the table, and
deploy/rbac.yaml with it.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from bot.settings import Settings
from core.domain.policy_file import parse_policy

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_MODULES = tuple(
    ROOT / "adapters" / "kubernetes" / name
    for name in ("executor.py", "calls.py", "connect.py", "blast.py", "writes.py", "drain.py", "observe.py",
                 "follow.py", "preview.py")
)
# The facade and the connection set-up hold a client but call nothing through it themselves; the follow
# calls the list methods observe.py hands it (`_lister`, `pod_lister=`), as raw JSON and as watches.
NO_CALLS = frozenset({"executor.py", "connect.py", "follow.py"})
WATCHED_BY = ("_lister",)  # functions whose client methods are watched
WATCHED_AS = ("reader", "pod_lister")  # keywords of `Follow(...)` whose client methods are watched

# ------------------------------------------------------------------------------------------------
# What an API call needs from RBAC


@dataclass(frozen=True)
class ResourceAccess:
    group: str  # "" is the core group
    resource: str  # "deployments", or "deployments/scale" for a subresource
    verb: str

    def __str__(self) -> str:
        return f"{self.verb} {self.group or 'core'}/{self.resource}"


@dataclass(frozen=True)
class UrlAccess:
    url: str  # a non-resource URL such as /version/
    verb: str

    def __str__(self) -> str:
        return f"{self.verb} {self.url}"


Access = ResourceAccess | UrlAccess


class UnknownClientCall(AssertionError):
    """A client method or raw call the table below does not know: extend it (and rbac.yaml)."""


# The client's naming convention: <verb>_[namespaced_]<kind>[_<subresource>][_for_all_namespaces].
API_GROUPS = {
    "CoreV1Api": "",
    "AppsV1Api": "apps",
    "AutoscalingV1Api": "autoscaling",
    "AutoscalingV2Api": "autoscaling",
    "BatchV1Api": "batch",
    "PolicyV1Api": "policy",
    "NetworkingV1Api": "networking.k8s.io",
    "AuthorizationV1Api": "authorization.k8s.io",
}
VERB_PREFIXES = (  # longest first: delete_collection_ before delete_
    ("delete_collection_", "deletecollection"),
    ("read_", "get"),
    ("list_", "list"),
    ("patch_", "patch"),
    ("replace_", "update"),
    ("create_", "create"),
    ("delete_", "delete"),
)
KINDS = {  # snake_case kind in method names → the resource's plural name in RBAC
    "subject_access_review": "subjectaccessreviews",
    "controller_revision": "controllerrevisions",
    "daemon_set": "daemonsets",
    "deployment": "deployments",
    "replica_set": "replicasets",
    "stateful_set": "statefulsets",
    "config_map": "configmaps",
    "endpoints": "endpoints",
    "event": "events",
    "namespace": "namespaces",
    "node": "nodes",
    "persistent_volume": "persistentvolumes",
    "persistent_volume_claim": "persistentvolumeclaims",
    "pod": "pods",
    "secret": "secrets",
    "service": "services",
    "service_account": "serviceaccounts",
    "job": "jobs",
    "cron_job": "cronjobs",
    "pod_disruption_budget": "poddisruptionbudgets",
    "horizontal_pod_autoscaler": "horizontalpodautoscalers",
    "network_policy": "networkpolicies",
}
SUBRESOURCES = ("scale", "status", "eviction", "log", "binding", "ephemeralcontainers", "resize")
# Calls outside the resource convention.
NON_RESOURCE_METHODS: dict[tuple[str, str], Access] = {
    ("VersionApi", "get_code"): UrlAccess("/version/", "get"),
}
# Attributes of an ApiClient that make no API call.
API_CLIENT_HARMLESS = frozenset({"close", "configuration", "set_default_header"})
# Attributes (on anything) that send a request outside the generated methods.
RAW_CALLS = frozenset({"call_api", "param_serialize", "_call_with_legacy_options", "rest_client", "request"})


def access_for_method(api: str, method: str) -> Access:
    """(group, resource, verb) of a generated client method, by the naming convention."""
    if (api, method) in NON_RESOURCE_METHODS:
        return NON_RESOURCE_METHODS[(api, method)]
    if api not in API_GROUPS:
        raise UnknownClientCall(f"{api}.{method}: unknown API class {api} (add it to API_GROUPS)")
    verb, rest = next(((v, method[len(p) :]) for p, v in VERB_PREFIXES if method.startswith(p)), (None, ""))
    if verb is None:
        raise UnknownClientCall(f"{api}.{method}: no known verb prefix (add it to VERB_PREFIXES)")
    rest = rest.removeprefix("namespaced_")
    if rest.endswith("_for_all_namespaces"):
        rest = rest.removesuffix("_for_all_namespaces")
    for kind in sorted(KINDS, key=len, reverse=True):
        if rest == kind:
            return ResourceAccess(API_GROUPS[api], KINDS[kind], verb)
        if rest.startswith(kind + "_") and rest[len(kind) + 1 :] in SUBRESOURCES:
            return ResourceAccess(API_GROUPS[api], f"{KINDS[kind]}/{rest[len(kind) + 1 :]}", verb)
    raise UnknownClientCall(f"{api}.{method}: unknown resource {rest!r} (add it to KINDS or SUBRESOURCES)")


def access_for_request(http_method: str, path: str) -> Access:
    """(group, resource, verb) of an HTTP request to the API server, as its authorizer sees it."""
    path = path.split("?", 1)[0]
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return UrlAccess(path, http_method.lower())
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        rest = rest[2:]  # namespaces/{namespace}/<resource>…, not a namespace's own subresource
    if not rest:
        raise UnknownClientCall(f"{http_method} {path}: discovery, not a resource")
    resource, named = rest[0], len(rest) >= 2
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    verbs = {
        "GET": "get" if named else "list",
        "DELETE": "delete" if named else "deletecollection",
        "PATCH": "patch",
        "PUT": "update",
        "POST": "create",
    }
    if http_method.upper() not in verbs:
        raise UnknownClientCall(f"{http_method} {path}: unknown HTTP method")
    return ResourceAccess(group, resource, verbs[http_method.upper()])


_SERIALIZED = re.compile(r"method='(\w+)',\s*resource_path='([^']+)'")
_LEGACY = re.compile(r"call_api\(\s*'([^']+)',\s*'(\w+)'")


@cache
def client_request(api: str, method: str) -> tuple[str, str]:
    """(HTTP method, path) that the installed client sends for `api.method`, read from its source."""
    cls = getattr(client, api, None)
    if cls is None or not callable(getattr(cls, method, None)):
        raise UnknownClientCall(f"{api}.{method}: the installed kubernetes client has no such method")
    for helper, pattern, order in (
        (f"_{method}_serialize", _SERIALIZED, (1, 2)),
        (f"{method}_with_http_info", _LEGACY, (2, 1)),
    ):
        if hasattr(cls, helper):
            found = pattern.search(inspect.getsource(getattr(cls, helper)))
            if found:
                return found.group(order[0]), found.group(order[1])
    raise UnknownClientCall(f"{api}.{method}: cannot find the request it makes in the client's source")


# ------------------------------------------------------------------------------------------------
# Which client methods the code can call: read statically


@dataclass(frozen=True)
class ClientUse:
    where: str  # file:line
    api: str
    method: str
    raw_json: bool = False
    watched: bool = False  # also called with watch=True (follow.py)


@dataclass(frozen=True)
class RawUse:
    where: str
    access: Access


def _api_class(node: ast.expr | None) -> str | None:
    """`client.AppsV1Api` / `AppsV1Api` / "client.AppsV1Api" → "AppsV1Api"; also ApiClient."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _api_class(ast.parse(node.value, mode="eval").body)
    name = None
    if isinstance(node, ast.Attribute):
        name = node.attr
    elif isinstance(node, ast.Name):
        name = node.id
    if name is not None and (name.endswith("Api") or name == "ApiClient"):
        return name
    return None


def _constructed(node: ast.expr) -> str | None:
    return _api_class(node.func) if isinstance(node, ast.Call) else None


def _self_attr(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _receivers(tree: ast.Module) -> tuple[dict[str, str], dict[str, str]]:
    """Attributes of `self` and local names that hold an API class (or an ApiClient)."""
    on_self: dict[str, str] = {}
    names: dict[str, str] = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
        if any(isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list):
            # `@property def _core(self) -> client.CoreV1Api`: an API class built on first use.
            held = _api_class(fn.returns)
            if held is not None:
                on_self[fn.name] = held
        params = {a.arg: cls for a in args if (cls := _api_class(a.annotation)) is not None}
        names.update(params)
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            cls = _constructed(value)
            if cls is None and isinstance(value, ast.Name):
                cls = params.get(value.id)
            if cls is None:
                continue
            for target in targets:
                if (attr := _self_attr(target)) is not None:
                    on_self[attr] = cls
                elif isinstance(target, ast.Name):
                    names[target.id] = cls
    return on_self, names


def _holder(node: ast.expr, on_self: dict[str, str], names: dict[str, str]) -> str | None:
    """The API class an expression holds, if any: `self._apps`, `apps`, `client.CoreV1Api(x)`."""
    attr = _self_attr(node)
    if attr is not None:
        return on_self.get(attr)
    if isinstance(node, ast.Name):
        return names.get(node.id)
    return _constructed(node)


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _raw_access(call: ast.Call, where: str) -> Access:
    """A raw request (`api_client.call_api('/api/v1/pods', 'GET')`, `param_serialize(method=…,
    resource_path=…)`) with a literal path and method, mapped like the client's own calls."""
    values = [*call.args[:2], *(k.value for k in call.keywords if k.arg in ("method", "resource_path"))]
    literals = [v for v in map(_literal, values) if v is not None]
    paths = [v for v in literals if v.startswith("/")]
    methods = [v for v in literals if v.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    if len(paths) != 1 or len(methods) != 1:
        raise UnknownClientCall(f"{where}: a raw API call whose path and method are not literals")
    return access_for_request(methods[0], paths[0])


def _table_entries(argument: ast.expr, call: ast.Call, tree: ast.Module) -> list[ast.expr]:
    """What a raw reader is handed: a client method, or one picked from a table of them, either in the
    calling function (`patchers[op.target]`) or by a method of the class (`self._reader(kind)`)."""
    if isinstance(argument, ast.Subscript) and isinstance(argument.value, ast.Name):
        enclosing = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                     and any(n is call for n in ast.walk(f))]
        scope: ast.AST = enclosing[-1] if enclosing else tree
        name = argument.value.id
        tables = [n.value for n in ast.walk(scope) if isinstance(n, ast.Assign | ast.AnnAssign)
                  and isinstance(n.value, ast.Dict)
                  and any(isinstance(t, ast.Name) and t.id == name
                          for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))]
        if len(tables) == 1 and isinstance(tables[0], ast.Dict):
            return list(tables[0].values)
    if isinstance(argument, ast.Call) and (method := _self_attr(argument.func)) is not None:
        found = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == method]
        tables = [n for f in found for n in ast.walk(f) if isinstance(n, ast.Dict)]
        if len(found) == 1 and tables:
            return [v for t in tables for v in t.values]
    return [argument]


def client_uses(source: str, filename: str) -> tuple[list[ClientUse], list[RawUse]]:
    """Every client method the module can call, and every raw request it makes."""
    tree = ast.parse(source, filename=filename)
    on_self, names = _receivers(tree)
    short = Path(filename).name
    uses: list[ClientUse] = []
    raws: list[RawUse] = []
    # Functions that call one of their parameters with _preload_content=False: raw-JSON readers.
    raw_readers: dict[str, int] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args]]
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and any(k.arg == "_preload_content" for k in node.keywords)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in params
                ):
                    index = params.index(node.func.id) - (1 if params[:1] == ["self"] else 0)
                    raw_readers[fn.name] = index
    if Path(filename).resolve() in KUBERNETES_MODULES:
        raw_readers.update({name: index for name, index in module_raw_readers().items()
                            if name not in raw_readers})
    raw_json_args: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            reader = _reader_name(node)
            if reader in raw_readers and len(node.args) > raw_readers[reader]:
                argument = node.args[raw_readers[reader]]
                if isinstance(argument, ast.Name):
                    continue  # a reader handing its own parameter on: its callers are checked
                for method in _table_entries(argument, node, tree):
                    if not (isinstance(method, ast.Attribute) and _holder(method.value, on_self, names)):
                        raise UnknownClientCall(
                            f"{short}:{node.lineno}: {reader}() reads raw JSON through something not a client method"
                        )
                    raw_json_args.add(id(method))
            if any(k.arg == "_preload_content" for k in node.keywords):
                func = node.func
                known = isinstance(func, ast.Attribute) and _holder(func.value, on_self, names) is not None
                in_reader = isinstance(func, ast.Name)  # a parameter inside a raw reader (checked above)
                if not (known or in_reader):
                    raise UnknownClientCall(f"{short}:{node.lineno}: _preload_content on an unknown callable")
            if isinstance(node.func, ast.Attribute) and node.func.attr in RAW_CALLS:
                raws.append(RawUse(f"{short}:{node.lineno}", _raw_access(node, f"{short}:{node.lineno}")))
            if (
                isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and node.args
                and _holder(node.args[0], on_self, names) is not None
            ):
                raise UnknownClientCall(f"{short}:{node.lineno}: getattr() on a client object hides the call")
    watched: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in WATCHED_BY:
            watched |= {id(a) for a in ast.walk(node) if isinstance(a, ast.Attribute)}
        if isinstance(node, ast.Call):
            watched |= {id(k.value) for k in node.keywords if k.arg in WATCHED_AS}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        where = f"{short}:{node.lineno}"
        api = _holder(node.value, on_self, names)
        if api == "ApiClient":
            if node.attr not in API_CLIENT_HARMLESS and node.attr not in RAW_CALLS:
                raise UnknownClientCall(f"{where}: ApiClient.{node.attr} is not known to be harmless")
        elif api is not None and node.attr != "api_client":
            seen = id(node) in watched
            uses.append(ClientUse(where, api, node.attr, raw_json=id(node) in raw_json_args or seen, watched=seen))
        elif api is not None:
            raise UnknownClientCall(f"{where}: reaching the ApiClient behind an API class")
        elif re.fullmatch(r"(read|list|patch|replace|create|delete|connect|get)_\w+", node.attr) and (
            node.attr.endswith(tuple(f"_{s}" for s in SUBRESOURCES))
            or "namespaced" in node.attr
            or node.attr.endswith(("_node", "_for_all_namespaces"))
        ):
            raise UnknownClientCall(f"{where}: .{node.attr} looks like a client method on an unknown object")
    return uses, raws


def _reader_name(call: ast.Call) -> str | None:
    """`self._read(...)`, `read(...)`, or a reader of another object of ours: `self._calls.read(...)`."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and (_self_attr(func) is not None or _self_attr(func.value) is not None):
        return func.attr
    return None


@cache
def module_raw_readers() -> dict[str, int]:
    """Methods of the Kubernetes modules that call one of their parameters with _preload_content=False,
    or hand a parameter on to such a method (`read(fn)` → `_json(fn)`); the value is fn's position."""
    functions = []
    for path in KUBERNETES_MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        functions += [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
    found: dict[str, int] = {}
    while True:
        before = dict(found)
        for fn in functions:
            params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args]]
            offset = 1 if params[:1] == ["self"] else 0
            for node in ast.walk(fn):
                if not isinstance(node, ast.Call):
                    continue
                if (any(k.arg == "_preload_content" for k in node.keywords) and isinstance(node.func, ast.Name)
                        and node.func.id in params):
                    found[fn.name] = params.index(node.func.id) - offset
                reader = _reader_name(node)
                if reader in found and len(node.args) > found[reader]:
                    argument = node.args[found[reader]]
                    if isinstance(argument, ast.Name) and argument.id in params:
                        found.setdefault(fn.name, params.index(argument.id) - offset)
        if found == before:
            return found


def derived_accesses() -> dict[Access, list[str]]:
    """What the executor and the blast-radius reader can ask of the API server, with where."""
    needed: dict[Access, list[str]] = {}
    for path in KUBERNETES_MODULES:
        uses, raws = client_uses(path.read_text(encoding="utf-8"), str(path))
        assert bool(uses) is (path.name not in NO_CALLS), (
            f"{path.name}: client methods found or not; has the way it holds the client changed?")
        for use in uses:
            access = access_for_method(use.api, use.method)
            http_method, request_path = client_request(use.api, use.method)
            assert access == access_for_request(http_method, request_path), (
                f"{use.api}.{use.method}: the naming convention says {access}, "
                f"the client sends {http_method} {request_path}"
            )
            needed.setdefault(access, []).append(f"{use.where} {use.api}.{use.method}" + " (raw JSON)" * use.raw_json)
            if use.watched:
                watch = dataclasses.replace(access, verb="watch")
                needed.setdefault(watch, []).append(f"{use.where} {use.api}.{use.method} (watch=True)")
        for raw in raws:
            needed.setdefault(raw.access, []).append(f"{raw.where} raw call")
    return needed


# ------------------------------------------------------------------------------------------------
# What the ClusterRole grants


def granted(rules: list[dict[str, Any]]) -> set[Access]:
    out: set[Access] = set()
    for rule in rules:
        for verb in rule.get("verbs") or []:
            for url in rule.get("nonResourceURLs") or []:
                out.add(UrlAccess(url, verb))
            for group in rule.get("apiGroups") or []:
                for resource in rule.get("resources") or []:
                    out.add(ResourceAccess(group, resource, verb))
    return out


def rbac_problems(rules: list[dict[str, Any]], needed: set[Access]) -> list[str]:
    """Empty when the rules grant every needed call and nothing else."""
    problems = []
    for i, rule in enumerate(rules):
        for key in ("apiGroups", "resources", "verbs", "nonResourceURLs", "resourceNames"):
            for value in rule.get(key) or []:
                if "*" in value:
                    problems.append(f"rule {i}: wildcard {value!r} in {key}")
        if rule.get("nonResourceURLs") and (rule.get("resources") or rule.get("apiGroups")):
            problems.append(f"rule {i}: mixes resources and non-resource URLs")
        if "secrets" in {r.split("/")[0] for r in rule.get("resources") or []}:
            problems.append(f"rule {i}: grants access to secrets")
    have = granted(rules)
    problems += [f"missing: {a}" for a in sorted(needed - have, key=str)]
    problems += [f"not needed: {a}" for a in sorted(have - needed, key=str)]
    return problems


# ------------------------------------------------------------------------------------------------
# Loading the manifests


@cache
def documents() -> dict[str, list[dict[str, Any]]]:
    out = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        out[path.name] = docs
    return out


def manifests() -> list[dict[str, Any]]:
    """The Kubernetes objects `kubectl apply -k deploy/` applies."""
    listed = kustomization()["resources"]
    return [d for name in listed for d in documents()[name]]


def kustomization() -> dict[str, Any]:
    found: dict[str, Any] = documents()["kustomization.yaml"][0]
    return found


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in manifests() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container() -> dict[str, Any]:
    containers = one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


def env() -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container()["env"]}


def cluster_role_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = one("ClusterRole", "signoff")["rules"]
    return rules


# ------------------------------------------------------------------------------------------------
# The RBAC test


def test_the_cluster_role_grants_exactly_what_the_executor_calls() -> None:
    needed = derived_accesses()
    problems = rbac_problems(cluster_role_rules(), set(needed))
    calls = [f"  {access}: {', '.join(places)}" for access, places in sorted(needed.items(), key=lambda kv: str(kv[0]))]
    assert not problems, "deploy/rbac.yaml: " + "; ".join(problems) + "\nThe calls the code makes:\n" + "\n".join(calls)


def test_the_derived_calls_cover_every_operation_of_the_allow_list() -> None:
    """An anchor: if the extraction silently found less, the RBAC test above would pass on too little."""
    needed = set(derived_accesses())
    restart: list[Access] = [ResourceAccess("apps", r, "patch") for r in ("deployments", "statefulsets", "daemonsets")]
    scale = [ResourceAccess("apps", f"{r}/scale", "patch") for r in ("deployments", "statefulsets")]
    rollback = [ResourceAccess("apps", "deployments", "get"), ResourceAccess("apps", "replicasets", "list")]
    delete = [ResourceAccess("", "pods", "delete")]
    cordon = [ResourceAccess("", "nodes", "get"), ResourceAccess("", "nodes", "patch")]
    drain = [ResourceAccess("", "pods/eviction", "create")]
    blast = [ResourceAccess("", "pods", "list"), ResourceAccess("", "services", "list")]
    check = [UrlAccess("/version/", "get")]
    assert {*restart, *scale, *rollback, *delete, *cordon, *drain, *blast, *check} <= needed


def test_raw_json_reads_are_seen() -> None:
    """Every object is read (and every write answered) as raw JSON, once, in one form: no client models."""
    uses = [u for path in KUBERNETES_MODULES for u in client_uses(path.read_text(encoding="utf-8"), str(path))[0]]
    assert {(u.api, u.method) for u in uses if u.raw_json} == {
        ("AuthorizationV1Api", "create_subject_access_review"),
        ("AppsV1Api", "read_namespaced_deployment"),
        ("AppsV1Api", "list_namespaced_replica_set"),
        ("AppsV1Api", "read_namespaced_stateful_set"),
        ("AppsV1Api", "read_namespaced_daemon_set"),
        ("AppsV1Api", "read_namespaced_replica_set"),
        # listed and watched by follow.py
        ("AppsV1Api", "list_namespaced_deployment"),
        ("AppsV1Api", "list_namespaced_stateful_set"),
        ("AppsV1Api", "list_namespaced_daemon_set"),
        ("CoreV1Api", "read_namespaced_pod"),
        ("CoreV1Api", "read_node"),
        ("CoreV1Api", "list_namespaced_pod"),
        ("CoreV1Api", "list_pod_for_all_namespaces"),
        ("CoreV1Api", "list_namespaced_service"),
        ("CoreV1Api", "list_service_for_all_namespaces"),
        # the writes' answers too
        ("AppsV1Api", "patch_namespaced_deployment"),
        ("AppsV1Api", "patch_namespaced_stateful_set"),
        ("AppsV1Api", "patch_namespaced_daemon_set"),
        ("AppsV1Api", "patch_namespaced_deployment_scale"),
        ("AppsV1Api", "patch_namespaced_stateful_set_scale"),
        ("CoreV1Api", "delete_namespaced_pod"),
        ("CoreV1Api", "patch_node"),
        ("CoreV1Api", "create_namespaced_pod_eviction"),
        ("PolicyV1Api", "list_pod_disruption_budget_for_all_namespaces"),
        ("AutoscalingV2Api", "list_namespaced_horizontal_pod_autoscaler"),
    }
    # Only the version check (start-up, one small object) builds a client model.
    assert {(u.api, u.method) for u in uses if not u.raw_json} == {("VersionApi", "get_code")}


def test_only_the_executor_modules_talk_to_the_cluster() -> None:
    """Another module importing the client would make calls this test does not read."""
    importers = set()
    for package in ("adapters", "bot", "core"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                modules = []
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module]
                if any(m.split(".")[0] == "kubernetes" for m in modules):
                    importers.add(path)
    assert importers <= set(KUBERNETES_MODULES)


# Self-tests: the checks above can fail.


def test_removing_a_rule_or_adding_a_verb_is_detected() -> None:
    needed = set(derived_accesses())
    rules = cluster_role_rules()
    assert rbac_problems(rules, needed) == []

    without_pods = [r for r in copy.deepcopy(rules) if "pods" not in (r.get("resources") or [])]
    assert "missing: delete core/pods" in rbac_problems(without_pods, needed)

    extra_verb = copy.deepcopy(rules)
    next(r for r in extra_verb if r.get("resources") == ["nodes"])["verbs"].append("update")
    assert rbac_problems(extra_verb, needed) == ["not needed: update core/nodes"]

    new = len(rules)
    extra_resource = [*copy.deepcopy(rules), {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert rbac_problems(extra_resource, needed) == [
        f"rule {new}: grants access to secrets",
        "not needed: get core/secrets",
    ]

    wildcard = [*copy.deepcopy(rules), {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]}]
    assert f"rule {new}: wildcard '*' in resources" in rbac_problems(wildcard, needed)

    # A rule is a product of groups × resources × verbs: one verb too many for one resource counts.
    widened = copy.deepcopy(rules)
    next(r for r in widened if r.get("resources") == ["services"])["resources"].append("nodes")
    assert rbac_problems(widened, needed) == ["not needed: list core/nodes"]

    fewer_urls = [r for r in copy.deepcopy(rules) if not r.get("nonResourceURLs")]
    assert rbac_problems(fewer_urls, needed) == ["missing: get /version/"]


SAMPLE = '''
from kubernetes import client

class Grown:
    def __init__(self, api_client: client.ApiClient, core: client.CoreV1Api) -> None:
        self._api = api_client
        self._core = core
        self._batch = client.BatchV1Api(api_client)

    def work(self, fn):
        self._core.list_namespaced_secret("ns")
        table = {"job": self._batch.create_namespaced_job}
        self._api.call_api("/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "PUT")
        return self._raw(self._core.read_namespaced_pod_log, "p", "ns")

    def _raw(self, fn, *args):
        return fn(*args, _preload_content=False)
'''


def test_the_extraction_sees_new_calls() -> None:
    uses, raws = client_uses(SAMPLE, "sample.py")
    found = {access_for_method(u.api, u.method) for u in uses} | {r.access for r in raws}
    assert found == {
        ResourceAccess("", "secrets", "list"),
        ResourceAccess("batch", "jobs", "create"),
        ResourceAccess("", "pods/log", "get"),
        ResourceAccess("apps", "deployments", "update"),
    }
    assert [u.method for u in uses if u.raw_json] == ["read_namespaced_pod_log"]
    problems = rbac_problems(cluster_role_rules(), set(derived_accesses()) | found)
    assert {"missing: list core/secrets", "missing: create batch/jobs", "missing: update apps/deployments"} <= set(
        problems
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(c: client.CoreV1Api):\n c.connect_get_namespaced_pod_exec('p', 'ns')", "no known verb prefix"),
        ("def f(c: client.CoreV1Api):\n c.list_namespaced_lease('ns')", "unknown resource"),
        ("class A:\n def __init__(self, c: client.StorageV1Api):\n  self.c = c\n  self.c.list_storage_class()",
         "unknown API class"),
    ],
)
def test_a_method_the_table_does_not_know_fails(source: str, message: str) -> None:
    uses, _ = client_uses(source, "sample.py")
    with pytest.raises(UnknownClientCall, match=message):
        access_for_method(uses[0].api, uses[0].method)


@pytest.mark.parametrize(
    "source",
    [
        "def f(api_client: client.ApiClient, path):\n api_client.call_api(path, 'GET')",
        "def f(c: client.CoreV1Api):\n getattr(c, 'delete_namespaced_pod')('x', 'ns')",
        "def f(thing):\n thing.delete_namespaced_pod('x', 'ns')",
        "def f(c: client.CoreV1Api):\n c.api_client.call_api('/api/v1/pods', 'GET')",
    ],
)
def test_a_call_the_extraction_cannot_attribute_fails(source: str) -> None:
    with pytest.raises(UnknownClientCall):
        client_uses(source, "sample.py")


def test_the_naming_convention_matches_the_client() -> None:
    """Every method of the classes we map, where the convention applies, agrees with the client."""
    checked = 0
    for api in ("AppsV1Api", "CoreV1Api", "PolicyV1Api"):
        for method in dir(getattr(client, api)):
            if method.startswith("_") or method.endswith(("_with_http_info", "_without_preload_content")):
                continue
            try:
                access = access_for_method(api, method)
            except UnknownClientCall:
                continue
            assert access == access_for_request(*client_request(api, method)), f"{api}.{method}"
            checked += 1
    assert checked > 100


# ------------------------------------------------------------------------------------------------
# The manifests


def test_every_yaml_parses_and_matches_the_kubernetes_schema() -> None:
    """Each object validates against the client's model of its kind (unknown fields rejected)."""
    for name, docs in documents().items():
        assert docs, f"{name} is empty"
        for doc in docs:
            if doc["apiVersion"].startswith("kustomize.config.k8s.io/"):
                continue
            version = doc["apiVersion"].split("/")[-1]
            model = getattr(client, version.capitalize() + doc["kind"])
            model.model_validate(doc)


def test_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert sorted(kustomization()["resources"]) == sorted(files)
    assert not any(d["kind"] == "Secret" for d in manifests())
    for doc in manifests():
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"].get("namespace") == "signoff", f"{doc['kind']} {doc['metadata']['name']}"


@pytest.mark.skipif(shutil.which("kubectl") is None,
                    reason="kubectl is not installed here (.ci/run installs Debian's kubectl package, so CI runs this)")
def test_kubectl_kustomize_builds() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert built.returncode == 0, built.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(built.stdout) if d)
    assert kinds == sorted(d["kind"] for d in manifests())


def test_deployment_runs_two_replicas_of_signoff_run() -> None:
    deployment = one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert container()["command"] == ["signoff", "run"]
    assert container()["image"] == "registry.example.com/signoff:0.1.0"  # the documented placeholder
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_probes_are_on_healthz_on_the_http_port() -> None:
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert ports == {"http": 3000}
    assert env()["SIGNOFF_HTTP_PORT"]["value"] == "3000"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container()[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert ports.get(get["port"], get["port"]) == 3000


def test_the_pod_runs_unprivileged() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    security = container()["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in security["capabilities"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    # A read-only root needs somewhere to write: /tmp, also HOME.
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert env()["HOME"]["value"] == "/tmp"
    resources = container()["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_the_service_account_is_wired_to_the_cluster_role() -> None:
    account = one("ServiceAccount")
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is True
    binding = one("ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": one("ClusterRole", "signoff")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]}
    ]


# docs/design.md §4: the settings a cluster deployment sets (the rest keep their defaults).
CONTRACT_ENV = {
    "SIGNOFF_DATABASE_URL",
    "SIGNOFF_POLICY",
    "SIGNOFF_CLUSTER",
    "SIGNOFF_API_TOKEN",
    "SIGNOFF_HTTP_PORT",
    "SIGNOFF_LOG_FORMAT",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "DISCORD_BOT_TOKEN",
}
SECRET_ENV = (CONTRACT_ENV - {"SIGNOFF_POLICY", "SIGNOFF_CLUSTER", "SIGNOFF_HTTP_PORT", "SIGNOFF_LOG_FORMAT"}) | {
    "SIGNOFF_LLM_API_KEY"
}


def test_env_names_are_the_contracts() -> None:
    names = set(env())
    assert names >= CONTRACT_ENV
    read_by_signoff = {field.alias for field in Settings.model_fields.values() if field.alias}
    assert names - {"HOME"} <= read_by_signoff, "a variable signoff does not read (a typo?)"
    assert env()["SIGNOFF_CLUSTER"]["value"] == "kubeconfig"
    assert env()["SIGNOFF_LOG_FORMAT"]["value"] == "json"


def test_secrets_come_from_the_secret_and_only_the_database_is_required() -> None:
    refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in env().items() if "secretKeyRef" in e.get("valueFrom", {})}
    assert set(refs) == SECRET_ENV
    assert all(ref["name"] == "signoff" and ref["key"] == name for name, ref in refs.items())
    assert {name for name, ref in refs.items() if not ref.get("optional")} == {"SIGNOFF_DATABASE_URL"}
    example = documents()["secret.example.yaml"][0]
    assert example["kind"] == "Secret"
    assert example["metadata"]["name"] == "signoff"
    assert set(example["stringData"]) == SECRET_ENV
    assert example["stringData"]["SIGNOFF_DATABASE_URL"].startswith("postgresql+asyncpg://")


def test_the_policy_config_map_is_mounted_where_signoff_policy_points() -> None:
    policy_path = Path(env()["SIGNOFF_POLICY"]["value"])
    mount = next(m for m in container()["volumeMounts"] if m["mountPath"] == str(policy_path.parent))
    assert mount["readOnly"] is True
    volume = next(v for v in one("Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    config_map = one("ConfigMap", volume["configMap"]["name"])
    assert [i["path"] for i in volume["configMap"]["items"]] == [policy_path.name]
    text = config_map["data"][volume["configMap"]["items"][0]["key"]]
    tomllib.loads(text)
    policy = parse_policy(text, str(policy_path))
    assert policy.people and policy.requests.protected_namespaces


def test_availability_two_nodes_and_a_disruption_budget() -> None:
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    spec = one("Deployment")["spec"]["template"]["spec"]
    assert "kubernetes.io/hostname" in {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    budget = one("PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_the_service_and_network_policy_expose_only_port_3000() -> None:
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one("Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, "http")]
    policy = one("NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
    assert ingress_ports == [3000]
    egress = {(p["port"], p.get("protocol", "TCP")) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP"), (5432, "TCP")}


def impersonation_sent() -> set[Access]:
    """The impersonation the Kubernetes adapter sends (`Impersonate-User` / `Impersonate-Group` headers)."""
    sent: set[Access] = set()
    for path in sorted((ROOT / "adapters" / "kubernetes").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for header, resource in (("Impersonate-User", "users"), ("Impersonate-Group", "groups")):
            if f'"{header}"' in text:
                sent.add(ResourceAccess("", resource, "impersonate"))
    return sent


def test_the_impersonate_role_grants_exactly_the_impersonation_the_code_sends() -> None:
    """`[execution] as = "requester"`: signoff-impersonate (defined, not bound by default) covers the headers."""
    needed = impersonation_sent()
    assert needed == {ResourceAccess("", "users", "impersonate"), ResourceAccess("", "groups", "impersonate")}
    role = one("ClusterRole", "signoff-impersonate")
    assert rbac_problems(role["rules"], needed) == []
    bound = {b["roleRef"]["name"] for b in manifests() if b["kind"] == "ClusterRoleBinding"}
    assert bound == {"signoff"}, "impersonation is bound only by the operator who turns on as = \"requester\""
