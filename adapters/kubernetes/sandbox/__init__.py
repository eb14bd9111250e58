"""The sandbox: an in-memory Kubernetes API server on loopback, for the demo, the console and every test.

By responsibility:
- `server`: `SandboxCluster`, the loopback HTTP server, its thread and the direct accessors;
- `api`: the HTTP semantics (discovery, routes, list/get/patch/update/delete, scale), with
  `errors` (the `Status` objects) and `resources` (what is served where);
- `store`: objects, resourceVersion, uids; `validation`: defaulting and validation;
- `patch`: strategic merge, merge and JSON patches; `selectors`: label and field selectors;
- `controllers` and `status`: Deployment → ReplicaSet → Pod, StatefulSet, DaemonSet, nodes;
- `eviction`: the Eviction API and PodDisruptionBudgets (policy/v1);
- `watch`: `?watch=true` streams; `table`: the Table `kubectl get` prints;
- `tls` and `standalone`: `signoff sandbox` over HTTPS with a kubeconfig kubectl accepts;
- `world`: the seeded demo cluster; `__main__`: the standalone server for test harnesses.
"""

from __future__ import annotations

from adapters.kubernetes.sandbox.server import SandboxCluster

__all__ = ["SandboxCluster"]
