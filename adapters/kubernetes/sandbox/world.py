"""The seeded demo world: namespaces, nodes, workloads and services, built once per process."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import structlog

from adapters.kubernetes.sandbox.common import JSON, _name, _namespace, _now, _ts
from adapters.kubernetes.sandbox.controllers import Controllers

log = structlog.get_logger(__name__)


def seed(server: Controllers) -> None:
    """Load the seeded cluster; built once per process, then copied (tests start many sandboxes)."""
    with _SEED_LOCK:
        cached = _SEED_CACHE.get("cluster")
        if cached is None:
            _build_seed(server)
            cached = (
                json.dumps(list(server.objects.values())),
                server.resource_version,
                server.rng.getstate(),
                server.ip_counter,
            )
            _SEED_CACHE["cluster"] = cached
            return
    objects, server.resource_version, rng_state, server.ip_counter = cached
    server.rng.setstate(rng_state)
    for obj in json.loads(objects):
        server.objects[(obj["kind"], _namespace(obj), _name(obj))] = obj


def _build_seed(server: Controllers) -> None:
    for namespace in ("default", "kube-system", "kube-public", "monitoring", "prod", "staging"):
        server.put(
            {
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {"kubernetes.io/metadata.name": namespace}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
        )
    for index in (1, 2, 3):
        server.put(_node(index, server._uid()))
    server.put(_service("default", "kubernetes", None, [("https", 443, 6443)], cluster_ip="10.96.0.1"))

    # prod/api with a real rollout history: 1.4.0 → 1.4.1 → 1.4.2.
    for image in ("ghcr.io/acme/api:1.4.0", "ghcr.io/acme/api:1.4.1", "ghcr.io/acme/api:1.4.2"):
        server.put(
            _deployment(
                "prod",
                "api",
                3,
                _container("api", image, 8080, cpu="250m", memory="256Mi", env={"LOG_LEVEL": "info"}),
                labels={"app": "api", "tier": "backend"},
                change_cause=f"deploy {image.rsplit(':', 1)[1]}",
            )
        )
    server.put(
        _deployment(
            "prod",
            "web",
            2,
            _container("web", "ghcr.io/acme/web:2.3.1", 8080),
            labels={"app": "web", "tier": "frontend"},
        )
    )
    server.put(
        _deployment(
            "prod",
            "worker",
            1,
            _container("worker", "ghcr.io/acme/worker:1.4.2", None, cpu="500m", memory="512Mi"),
            labels={"app": "worker", "tier": "backend"},
        )
    )
    server.put(_postgres())
    server.put(_service("prod", "api", {"app": "api"}, [("http", 80, 8080)], cluster_ip="10.96.12.40"))
    server.put(_service("prod", "web", {"app": "web"}, [("http", 80, 8080)], cluster_ip="10.96.12.41"))
    server.put(_service("prod", "postgres", {"app": "postgres"}, [("postgres", 5432, 5432)], cluster_ip="None"))

    server.put(
        _deployment(
            "staging",
            "web",
            2,
            _container("web", "ghcr.io/acme/web:2.4.0-rc.1", 8080),
            labels={"app": "web", "tier": "frontend"},
        )
    )
    server.put(
        _deployment(
            "staging",
            "api",
            1,
            _container("api", "ghcr.io/acme/api:1.5.0-rc.1", 8080, cpu="250m", memory="256Mi"),
            labels={"app": "api", "tier": "backend"},
        )
    )
    server.put(_service("staging", "web", {"app": "web"}, [("http", 80, 8080)], cluster_ip="10.96.20.10"))
    server.put(_service("staging", "api", {"app": "api"}, [("http", 80, 8080)], cluster_ip="10.96.20.11"))

    server.put(
        _daemon_set(
            "monitoring",
            "node-exporter",
            {"app.kubernetes.io/name": "node-exporter"},
            _container("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2", 9100, cpu="50m", memory="64Mi"),
        )
    )
    server.put(
        _deployment(
            "kube-system",
            "coredns",
            2,
            _container("coredns", "registry.k8s.io/coredns/coredns:v1.11.3", 53, cpu="100m", memory="70Mi"),
            labels={"k8s-app": "kube-dns"},
        )
    )
    server.put(
        _service(
            "kube-system",
            "kube-dns",
            {"k8s-app": "kube-dns"},
            [("dns-tcp", 53, 53)],
            cluster_ip="10.96.0.10",
        )
    )
    server.put(
        _daemon_set(
            "kube-system",
            "kube-proxy",
            {"k8s-app": "kube-proxy"},
            _container("kube-proxy", "registry.k8s.io/kube-proxy:v1.31.0", None, cpu="50m", memory="64Mi"),
        )
    )




_SEED_LOCK = threading.Lock()
_SEED_CACHE: dict[str, tuple[str, int, Any, int]] = {}



def _container(
    name: str,
    image: str,
    port: int | None,
    *,
    cpu: str = "100m",
    memory: str = "128Mi",
    env: Mapping[str, str] | None = None,
) -> JSON:
    container: JSON = {
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
    }
    if port is not None:
        container["ports"] = [{"name": "http" if port not in (53, 5432, 9100) else name[:15], "containerPort": port}]
        container["readinessProbe"] = {
            "tcpSocket": {"port": port},
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        }
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return container


def _deployment(
    namespace: str,
    name: str,
    replicas: int,
    container: JSON,
    *,
    labels: Mapping[str, str],
    change_cause: str | None = None,
) -> JSON:
    selector = {"app": labels["app"]} if "app" in labels else dict(labels)
    annotations = {"kubernetes.io/change-cause": change_cause} if change_cause else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": annotations,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [container]}},
        },
    }


def _postgres() -> JSON:
    container = _container(
        "postgres",
        "postgres:16.4",
        5432,
        cpu="500m",
        memory="1Gi",
        env={"PGDATA": "/var/lib/postgresql/data/pgdata"},
    )
    container["volumeMounts"] = [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]
    labels = {"app": "postgres", "tier": "data"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "postgres", "namespace": "prod", "labels": labels},
        "spec": {
            "replicas": 1,
            "serviceName": "postgres",
            "selector": {"matchLabels": {"app": "postgres"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "10Gi"}},
                    },
                }
            ],
        },
    }


def _daemon_set(namespace: str, name: str, labels: Mapping[str, str], container: JSON) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [container],
                    "hostNetwork": True,
                    "tolerations": [{"operator": "Exists"}],
                },
            },
        },
    }


def _service(
    namespace: str,
    name: str,
    selector: Mapping[str, str] | None,
    ports: Iterable[tuple[str, int, int]],
    *,
    cluster_ip: str,
) -> JSON:
    spec: JSON = {
        "type": "ClusterIP",
        "clusterIP": cluster_ip,
        "clusterIPs": [cluster_ip],
        "ports": [
            {"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"}
            for port_name, port, target in ports
        ],
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "internalTrafficPolicy": "Cluster",
    }
    if selector:
        spec["selector"] = dict(selector)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(selector or {"component": "apiserver"}),
        },
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def _node(index: int, boot_id: str) -> JSON:
    name = f"node-{index}"
    cpu, memory = ("8", "32867184Ki") if index == 3 else ("4", "16393892Ki")
    heartbeat = _ts(_now())
    since = _ts(_now() - timedelta(days=41))

    def condition(kind: str, value: str, reason: str, message: str) -> JSON:
        return {
            "type": kind,
            "status": value,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": since,
        }

    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": f"zone-{'abc'[index - 1]}",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
        "status": {
            "capacity": {
                "cpu": cpu,
                "memory": memory,
                "pods": "110",
                "ephemeral-storage": "102687672Ki",
                "hugepages-2Mi": "0",
            },
            "allocatable": {
                "cpu": cpu,
                "memory": memory,
                "pods": "110",
                "ephemeral-storage": "94636136878",
                "hugepages-2Mi": "0",
            },
            "conditions": [
                condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.0.{10 + index}"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hashlib.md5(name.encode(), usedforsecurity=False).hexdigest(),
                "systemUUID": str(uuid.UUID(hashlib.md5(name.encode(), usedforsecurity=False).hexdigest())),
                "bootID": boot_id,
                "kernelVersion": "6.8.0-45-generic",
                "osImage": "Ubuntu 24.04.1 LTS",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": "v1.31.0",
                "kubeProxyVersion": "v1.31.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


# --------------------------------------------------------------------------------------------
# The loopback server, its thread, and the test hooks
