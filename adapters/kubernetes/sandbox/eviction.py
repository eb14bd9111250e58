"""The Eviction API and PodDisruptionBudgets (policy/v1), as the real API server enforces them.

`POST /api/v1/namespaces/{ns}/pods/{name}/eviction` deletes the pod unless that would take the
pods selected by its PodDisruptionBudget below the budget: then the answer is 429 TooManyRequests
with a `DisruptionBudget` cause, and the caller (kubectl drain, signoff's drain) asks again later.
A PDB's status (`currentHealthy`, `desiredHealthy`, `disruptionsAllowed`, `expectedPods`) is
recomputed after every controller pass, as the disruption controller keeps it current.
"""

from __future__ import annotations

import json
import math
from typing import Any

from adapters.kubernetes.objects import selector_string
from adapters.kubernetes.sandbox.common import JSON, _Call, _clone, _labels, _meta, _namespace, _now, _ts
from adapters.kubernetes.sandbox.controllers import Controllers
from adapters.kubernetes.sandbox.errors import _ApiError, _bad_request, _Cause, _not_found
from adapters.kubernetes.sandbox.resources import _BY_KIND
from adapters.kubernetes.sandbox.selectors import _parse_label_selector


def _ready(pod: JSON) -> bool:
    if _meta(pod).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _scaled(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString of a PDB: an int, or a percentage of `total`."""
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * total / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


class Evictions(Controllers):
    def reconcile(self, namespace: str | None = None, workload: JSON | None = None) -> None:
        super().reconcile(namespace, workload)
        for budget in self.all("PodDisruptionBudget", None if workload is not None else namespace):
            self._budget_status(budget)

    # ---- budgets

    def _selected(self, budget: JSON) -> list[JSON]:
        selector = (budget.get("spec") or {}).get("selector")
        if selector is None:
            return []  # policy/v1: a null selector selects nothing
        requirements = _parse_label_selector(selector_string(selector))
        return [p for p in self.all("Pod", _namespace(budget)) if all(r.matches(_labels(p)) for r in requirements)]

    def _budget_numbers(self, budget: JSON) -> tuple[int, int, int]:
        """(expectedPods, currentHealthy, desiredHealthy)."""
        spec = budget.get("spec") or {}
        pods = [p for p in self._selected(budget) if not _meta(p).get("deletionTimestamp")]
        expected = len(pods)
        healthy = sum(1 for p in pods if _ready(p))
        if spec.get("maxUnavailable") is not None:
            desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, round_up=True))
        elif spec.get("minAvailable") is not None:
            desired = _scaled(spec["minAvailable"], expected, round_up=True)
        else:
            desired = expected  # neither set: no voluntary disruption allowed
        return expected, healthy, desired

    def _budget_status(self, budget: JSON) -> JSON:
        expected, healthy, desired = self._budget_numbers(budget)
        generation = int(_meta(budget).get("generation", 1))
        condition: JSON = {
            "type": "DisruptionAllowed",
            "status": "True" if healthy > desired else "False",
            "reason": "SufficientPods" if healthy > desired else "InsufficientPods",
            "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": _ts(_now()),
        }
        previous = (budget.get("status") or {}).get("conditions") or []
        if previous and previous[0].get("status") == condition["status"]:
            condition["lastTransitionTime"] = previous[0].get("lastTransitionTime")
        status: JSON = {
            "observedGeneration": generation,
            "disruptionsAllowed": max(0, healthy - desired),
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [condition],
        }
        if budget.get("status") != status:
            updated = _clone(budget)
            updated["status"] = status
            return self._save(updated)
        return budget

    # ---- the eviction subresource

    def _evict(self, call: _Call) -> tuple[int, JSON]:
        if call.method != "POST":
            raise _ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        pods = _BY_KIND["Pod"]
        body = self._eviction_body(call)
        name, namespace = call.name, call.namespace or ""
        pod = self.find("Pod", namespace, name)
        if pod is None:
            raise _not_found(pods, name)
        options = body.get("deleteOptions") or {}
        dry_run = call.dry_run
        if options.get("dryRun"):
            if options["dryRun"] != ["All"]:
                raise _bad_request(f'invalid dryRun value {options["dryRun"]!r}: the only supported value is "All"')
            dry_run = True
        if not _meta(pod).get("deletionTimestamp") and _ready(pod):
            budgets = [b for b in self.all("PodDisruptionBudget", namespace) if pod in self._selected(b)]
            if len(budgets) > 1:
                raise _ApiError(500, "InternalError",
                                "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                                "does not support.")
            if budgets:
                _, healthy, desired = self._budget_numbers(budgets[0])
                if healthy - desired <= 0:
                    budget_name = _meta(budgets[0])["name"]
                    why = (f"The disruption budget {budget_name} needs {desired} healthy pods "
                           f"and has {healthy} currently")
                    raise _ApiError(
                        429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                        causes=[_Cause("", "DisruptionBudget", why)],
                    )
        delete = _Call("DELETE", pods, namespace, name, {}, "application/json",
                       json.dumps(options).encode() if options else b"", dry_run)
        self._delete(delete)
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    @staticmethod
    def _eviction_body(call: _Call) -> JSON:
        try:
            body = json.loads(call.body) if call.body.strip() else None
        except ValueError as error:
            raise _bad_request(f"the body of the request was in an unknown format: {error}") from None
        if not isinstance(body, dict) or body.get("kind") not in ("Eviction", None):
            raise _bad_request("the body of an eviction must be a policy/v1 Eviction")
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, call.name):
            raise _bad_request(f"name in URL does not match name in Eviction object: {meta.get('name')}")
        return body

    def _delete(self, call: _Call) -> JSON:
        """The HTTP DELETE of a pod: api.py's, which an eviction ends with."""
        raise NotImplementedError
