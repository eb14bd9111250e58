"""The HTTP semantics: discovery, routing, list/get/patch/update/delete and the scale subresource."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import structlog

from adapters.kubernetes.objects import pruned, selector_string
from adapters.kubernetes.sandbox.common import (
    _WRITE_METHODS,
    JSON,
    SERVER_VERSION,
    _Call,
    _clone,
    _labels,
    _meta,
    _namespace,
    _now,
    _spec,
    _ts,
    _without_item_type,
)
from adapters.kubernetes.sandbox.errors import (
    _METHOD_NOT_ALLOWED,
    _ApiError,
    _bad_request,
    _conflict,
    _invalid,
    _invalid_value,
    _not_found,
    _path_not_found,
)
from adapters.kubernetes.sandbox.eviction import Evictions
from adapters.kubernetes.sandbox.patch import _json_patch, _merge_patch, _PatchError, _strategic_merge
from adapters.kubernetes.sandbox.resources import _BY_PATH, _RESOURCES, _Resource
from adapters.kubernetes.sandbox.selectors import _field_filter, _parse_label_selector
from adapters.kubernetes.sandbox.store import _same_object
from adapters.kubernetes.sandbox.validation import check_types, default, validate

log = structlog.get_logger(__name__)


class ApiServer(Evictions):
    # ---- HTTP semantics

    def handle(
        self, method: str, path: str, query: Mapping[str, str], content_type: str, body: bytes
    ) -> tuple[int, JSON]:
        try:
            return self._handle(method, path, query, content_type, body)
        except _ApiError as error:
            return error.code, error.status()

    def _handle(
        self, method: str, path: str, query: Mapping[str, str], content_type: str, body: bytes
    ) -> tuple[int, JSON]:
        discovery = self._discovery(path)
        if discovery is not None:
            if method != "GET":
                raise _METHOD_NOT_ALLOWED
            return 200, discovery
        resource, namespace, name, subresource = self._route(path)
        dry_run = self._dry_run(method, query)
        if name is None:
            if method == "POST" and "create" in resource.verbs and namespace is not None:
                return 201, self._create(resource, namespace, self._decode(body), dry_run)
            if method != "GET":
                raise _METHOD_NOT_ALLOWED
            return 200, self._list(resource, namespace, query)
        call = _Call(method, resource, namespace, name, query, content_type, body, dry_run)
        if subresource == "scale":
            return 200, self._scale(call)
        if subresource == "eviction" and resource.kind == "Pod":
            return self._evict(call)
        if subresource is not None:
            raise _path_not_found()
        if method == "GET":
            return 200, self._require(resource, namespace, name)
        if method == "PATCH" and "patch" in resource.verbs:
            current = self._require(resource, namespace, name)
            return 200, self._update(call, current, self._apply_patch(content_type, current, body))
        if method == "PUT" and "update" in resource.verbs:
            return 200, self._replace(call, self._require(resource, namespace, name))
        if method == "DELETE" and "delete" in resource.verbs:
            return 200, self._delete(call)
        raise _METHOD_NOT_ALLOWED

    def _discovery(self, path: str) -> JSON | None:
        path = path.rstrip("/") or "/"
        if path == "/version":
            return dict(SERVER_VERSION)
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.address}],
            }
        groups = sorted({(r.group, r.version) for r in _RESOURCES if r.group})
        if path == "/apis":
            listed = []
            for group in sorted({g for g, _ in groups}):
                versions = [{"groupVersion": f"{group}/{v}", "version": v} for g, v in groups if g == group]
                listed.append({"name": group, "versions": versions, "preferredVersion": versions[0]})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": listed}
        for group, version in [("", "v1"), *groups]:
            if path == (f"/apis/{group}/{version}" if group else "/api/v1"):
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}" if group else "v1",
                    "resources": self._resource_list(group, version),
                }
        return None

    @staticmethod
    def _resource_list(group: str, version: str = "v1") -> list[JSON]:
        resources: list[JSON] = []
        for r in _RESOURCES:
            if r.group != group or r.version != version:
                continue
            resources.append(
                {
                    "name": r.plural,
                    "singularName": r.singular,
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": list(r.verbs),
                    "shortNames": list(r.short_names),
                }
            )
            if r.scalable:
                resources.append(
                    {
                        "name": f"{r.plural}/scale",
                        "singularName": "",
                        "namespaced": True,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if r.kind == "Pod":
                # kubectl drain looks for exactly this entry before it uses the Eviction API.
                resources.append(
                    {
                        "name": "pods/eviction",
                        "singularName": "",
                        "namespaced": True,
                        "group": "policy",
                        "version": "v1",
                        "kind": "Eviction",
                        "verbs": ["create"],
                    }
                )
        return resources

    @staticmethod
    def _route(path: str) -> tuple[_Resource, str | None, str | None, str | None]:
        segments = [s for s in path.split("/") if s]
        if segments[:2] == ["api", "v1"]:
            group, rest = "", segments[2:]
        elif len(segments) >= 3 and segments[0] == "apis" and segments[2] in ("v1", "v2"):
            group, rest = segments[1], segments[3:]
        else:
            raise _path_not_found()
        version = segments[1] if segments[0] == "api" else segments[2]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _path_not_found()
        resource = _BY_PATH.get((group, rest[0]))
        if resource is None or resource.version != version or (namespace is not None and not resource.namespaced):
            raise _path_not_found()
        if namespace is None and resource.namespaced and len(rest) > 1:
            # Namespaced objects are only listed across namespaces, never addressed without one.
            raise _path_not_found()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        return resource, namespace, name, subresource

    @staticmethod
    def _dry_run(method: str, query: Mapping[str, str]) -> bool:
        if method not in _WRITE_METHODS or "dryRun" not in query:
            return False
        value = query["dryRun"]
        if value != "All":
            raise _bad_request(f'invalid dryRun value {value!r}: the only supported value is "All"')
        return True

    def _require(self, resource: _Resource, namespace: str | None, name: str) -> JSON:
        obj = self.find(resource.kind, namespace, name)
        if obj is None:
            raise _not_found(resource, name)
        return obj

    def watched(self, path: str, query: Mapping[str, str]) -> Callable[[JSON], bool]:
        """Whether a changed object belongs to the list a watch of `path` stands for."""
        resource, namespace, _, _ = self._route(path)
        requirements = _parse_label_selector(query["labelSelector"]) if query.get("labelSelector") else []
        accept = _field_filter(resource, query["fieldSelector"]) if query.get("fieldSelector") else None

        def belongs(obj: JSON) -> bool:
            return (obj.get("kind") == resource.kind and (namespace is None or _namespace(obj) == namespace)
                    and all(r.matches(_labels(obj)) for r in requirements) and (accept is None or accept(obj)))

        return belongs

    def _list(self, resource: _Resource, namespace: str | None, query: Mapping[str, str]) -> JSON:
        if query.get("watch") in ("true", "1"):
            raise _bad_request("the sandbox API server does not support watch")
        items = self.all(resource.kind, namespace)
        if query.get("labelSelector"):
            requirements = _parse_label_selector(query["labelSelector"])
            items = [o for o in items if all(r.matches(_labels(o)) for r in requirements)]
        if query.get("fieldSelector"):
            accept = _field_filter(resource, query["fieldSelector"])
            items = [o for o in items if accept(o)]
        return {
            "apiVersion": resource.api_version,
            "kind": f"{resource.kind}List",
            "metadata": {"resourceVersion": str(self.resource_version)},
            "items": [_without_item_type(o) for o in items],
        }

    # ---- writes

    @staticmethod
    def _decode(body: bytes) -> Any:
        if not body:
            raise _bad_request("the request body is empty")
        try:
            return json.loads(body)
        except ValueError as error:
            raise _bad_request(f"the body of the request was in an unknown format: {error}") from None

    def _apply_patch(self, content_type: str, current: JSON, body: bytes) -> Any:
        document = self._decode(body)
        try:
            if content_type == "application/json-patch+json":
                if not isinstance(document, list):
                    raise _bad_request("a JSON patch must be a list of operations")
                return _json_patch(current, document)
            if content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(document, dict):
                    raise _bad_request("a merge patch must be a JSON object")
                if content_type == "application/merge-patch+json":
                    return _merge_patch(_clone(current), document)
                return _strategic_merge(_clone(current), document)
        except _PatchError as error:
            raise _ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {error}",
            ) from None
        if content_type.startswith("application/apply-patch"):
            raise _ApiError(415, "UnsupportedMediaType", "the sandbox does not implement server-side apply")
        raise _ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format ({content_type or 'no content type'}) - "
            "accepted media types include: application/json-patch+json, application/merge-patch+json, "
            "application/strategic-merge-patch+json",
        )

    def _replace(self, call: _Call, current: JSON) -> JSON:
        resource = call.resource
        if call.content_type not in ("application/json", ""):
            raise _ApiError(415, "UnsupportedMediaType", f"unsupported media type {call.content_type!r}")
        new = self._decode(call.body)
        if not isinstance(new, dict):
            raise _bad_request("the body must be a JSON object")
        if new.get("kind") not in (None, resource.kind):
            raise _bad_request(f"the kind in the data ({new.get('kind')}) does not match {resource.kind}")
        if new.get("apiVersion") not in (None, resource.api_version):
            raise _bad_request(
                f"the API version in the data ({new.get('apiVersion')}) does not match the expected "
                f"API version ({resource.api_version})"
            )
        return self._update(call, current, new)

    def _update(self, call: _Call, current: JSON, proposed: Any) -> JSON:
        """The common tail of PATCH and PUT: preconditions, defaulting, validation, persistence."""
        resource, namespace, name = call.resource, call.namespace, call.name
        if not isinstance(proposed, dict) or not isinstance(proposed.get("metadata", {}), dict):
            raise _bad_request("the object and its metadata must be JSON objects")
        new: JSON = _clone(proposed)
        meta = _meta(new)
        if meta.get("name", name) != name:
            raise _bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if resource.namespaced and meta.get("namespace", namespace) != namespace:
            raise _bad_request("the namespace of the provided object does not match the namespace sent on the request")
        current_meta = current["metadata"]
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv not in (None, "") and wanted_rv != current_meta["resourceVersion"]:
            raise _conflict(
                resource,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if meta.get("uid") not in (None, "", current_meta["uid"]):
            raise _conflict(
                resource,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {current_meta['uid']}",
            )
        check_types(resource, new)
        # Fields the server owns: a client can neither set nor clear them through an update.
        meta["name"] = name
        if resource.namespaced:
            meta["namespace"] = namespace
        for key in ("uid", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp"):
            if key in current_meta:
                meta[key] = current_meta[key]
            else:
                meta.pop(key, None)
        new["kind"], new["apiVersion"] = resource.kind, resource.api_version
        if resource.has_status:
            if "status" in current:
                new["status"] = _clone(current["status"])
            else:
                new.pop("status", None)
        default(resource, new)
        causes = validate(resource, new, current)
        if causes:
            raise _invalid(resource, name, causes)
        if resource.has_generation and pruned(new.get("spec")) != pruned(current.get("spec")):
            meta["generation"] = int(current_meta.get("generation", 1)) + 1
        if _same_object(current, new):
            return _clone(current)
        if call.dry_run:
            return new
        self._store(new)
        response = _clone(new)
        if new["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
            self.reconcile(namespace, workload=new)
        else:
            self.reconcile(namespace if resource.namespaced else None)
        return response

    def _scale(self, call: _Call) -> JSON:
        method, resource, namespace, name = call.method, call.resource, call.namespace, call.name
        content_type, body = call.content_type, call.body
        if not resource.scalable:
            raise _path_not_found()
        current = self._require(resource, namespace, name)
        scale = self._scale_of(current)
        if method == "GET":
            return scale
        if method == "PATCH":
            new_scale = self._apply_patch(content_type, scale, body)
        elif method == "PUT":
            new_scale = self._decode(body)
        else:
            raise _METHOD_NOT_ALLOWED
        if not isinstance(new_scale, dict):
            raise _bad_request("a Scale must be a JSON object")
        replicas = (new_scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise _bad_request(
                f"json: cannot unmarshal {type(replicas).__name__} into Go struct field "
                "ScaleSpec.spec.replicas of type int32"
            )
        if replicas < 0:
            causes = [_invalid_value("spec.replicas", replicas, "must be greater than or equal to 0")]
            raise _invalid(resource, name, causes, kind="Scale.autoscaling")
        workload = _clone(current)
        _spec(workload)["replicas"] = replicas
        scale_meta = new_scale.get("metadata") or {}
        for key in ("resourceVersion", "uid"):
            if key in scale_meta:
                _meta(workload)[key] = scale_meta[key]
            else:
                _meta(workload).pop(key, None)
        return self._scale_of(self._update(call, current, workload))

    @staticmethod
    def _scale_of(obj: JSON) -> JSON:
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "creationTimestamp": meta["creationTimestamp"],
            },
            "spec": {"replicas": int(obj["spec"].get("replicas", 0))},
            "status": {
                "replicas": int((obj.get("status") or {}).get("replicas", 0)),
                "selector": selector_string(obj["spec"].get("selector")),
            },
        }

    def _create(self, resource: _Resource, namespace: str, new: Any, dry_run: bool) -> JSON:
        """POST to a collection (only resources with the `create` verb: HorizontalPodAutoscalers)."""
        if not isinstance(new, dict) or not isinstance(new.get("metadata") or {}, dict):
            raise _bad_request("the object and its metadata must be JSON objects")
        if new.get("kind") not in (None, resource.kind):
            raise _bad_request(f"the kind in the data ({new.get('kind')}) does not match {resource.kind}")
        meta = dict(new.get("metadata") or {})
        if meta.get("namespace", namespace) != namespace:
            raise _bad_request("the namespace of the provided object does not match the namespace sent on the request")
        name = meta.get("name")
        if not name:
            raise _ApiError(422, "Invalid", f"{resource.kind} in version \"{resource.version}\" cannot be handled as "
                            "a " + resource.kind + ": metadata.name: Required value: name is required")
        if self.find(resource.kind, namespace, name) is not None:
            raise _ApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists')
        created: JSON = {**_clone(new), "kind": resource.kind, "apiVersion": resource.api_version,
                         "metadata": {**meta, "namespace": namespace}}
        check_types(resource, created)
        return created if dry_run else self.put(created)

    def _delete(self, call: _Call) -> JSON:
        resource, namespace, name, query, body = (
            call.resource,
            call.namespace,
            call.name,
            call.query,
            call.body,
        )
        dry_run = call.dry_run
        current = self._require(resource, namespace, name)
        options = self._decode(body) if body.strip() else {}
        if not isinstance(options, dict):
            raise _bad_request("DeleteOptions must be a JSON object")
        if options.get("dryRun"):
            if options["dryRun"] != ["All"]:
                raise _bad_request(f'invalid dryRun value {options["dryRun"]!r}: the only supported value is "All"')
            dry_run = True
        preconditions = options.get("preconditions") or {}
        for key in ("uid", "resourceVersion"):
            wanted = preconditions.get(key)
            actual = current["metadata"].get(key)
            if wanted is not None and wanted != actual:
                label = "UID" if key == "uid" else "ResourceVersion"
                raise _conflict(
                    resource,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}",
                )
        grace: Any = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        if grace is None:
            grace = _spec(current).get("terminationGracePeriodSeconds", 30)
        try:
            grace = int(grace)
        except (TypeError, ValueError):
            raise _bad_request(f"invalid gracePeriodSeconds {grace!r}") from None
        if grace < 0:
            raise _bad_request("gracePeriodSeconds must not be negative")
        pod = _clone(current)
        meta = _meta(pod)
        meta["deletionTimestamp"] = _ts(_now() + timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        if dry_run:
            return pod
        # The sandbox's containers stop at once on SIGTERM, so the kubelet finalises the pod
        # immediately: it is gone from the store and its controller replaces it right away.
        meta["resourceVersion"] = self._next_rv()
        self._remove(resource.kind, namespace or "", name)
        self.reconcile(namespace or None)
        return pod

    # ---- defaulting and validation
