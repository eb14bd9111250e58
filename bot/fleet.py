"""Several clusters at the edges: what check-config says about `[clusters]`, and building one executor each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.settings import Settings
from core.app.clusters import ClusterRegistry
from core.domain.clusters import cluster_problem, context_of, default_cluster
from core.domain.policy import Policy
from core.domain.policy_file import PolicyFileError, cluster_line
from core.errors import SignoffError
from core.ports import Cluster


def kubeconfig_contexts(path: str | None = None) -> tuple[list[str], str | None, str]:
    """The contexts of the kubeconfig signoff would read, its current context, and its path."""
    from adapters.kubernetes.connect import contexts

    return contexts(path)


def check_contexts(policy: Policy, contexts: list[str], kubeconfig: str) -> None:
    """Every `[clusters.<name>]` names a context the kubeconfig has; refused with its line otherwise."""
    text = Path(policy.source).read_text(encoding="utf-8") if Path(policy.source).is_file() else ""
    for name, spec in policy.clusters.items():
        context = context_of(name, spec)
        if context in contexts:
            continue
        line = cluster_line(text, name, "context")  # the table's header when it names no context
        raise PolicyFileError(
            policy.source, line, f"clusters.{name}.context",
            f"the kubeconfig {kubeconfig} has no context `{context}`; its contexts are: "
            f"{', '.join(contexts) or 'none'}. Set `context` to one of them.",
        )


def describe_clusters(policy: Policy, implicit: str) -> list[str]:
    """check-config's lines about the clusters."""
    if not policy.clusters:
        return [f"clusters: one, {implicit} (add [clusters.<name>] tables for several)"]
    default = default_cluster(policy.clusters)
    lines = [f"clusters: {len(policy.clusters)}, default {default or '(none: requests must name one)'}"]
    for name, spec in policy.clusters.items():
        extra = []
        if spec.risk_floor:
            extra.append(f"risk floor {spec.risk_floor}")
        if spec.protected_namespaces:
            extra.append(f"also protected: {', '.join(spec.protected_namespaces)}")
        if spec.channels is not None:
            extra.append(f"requests only from {', '.join(spec.channels) or 'nowhere'}")
        lines.append(f"  cluster {name}: context {context_of(name, spec)}" + "".join(f"; {e}" for e in extra))
    return lines


def check_config_clusters(settings: Settings, policy: Policy) -> list[str]:
    """The cluster lines of check-config; raises PolicyFileError for a context the kubeconfig lacks."""
    if settings.cluster == "sandbox":
        return describe_clusters(policy, "sandbox")
    try:
        contexts, current, path = kubeconfig_contexts()
    except SignoffError as exc:
        if policy.clusters:
            raise
        return [f"clusters: one, the current kubeconfig context (none here: {exc.message})"]
    check_contexts(policy, contexts, path)
    return describe_clusters(policy, current or "the current context")


async def build_registry(
    settings: Settings, policy: Policy, closers: list[Callable[[], Any]],
    warmers: list[Callable[[], Awaitable[Any]]] | None = None,
) -> tuple[ClusterRegistry, Any]:
    """One executor per cluster of the policy (one sandbox API server each in sandbox mode); without
    [clusters], the one cluster of the current context (`sandbox` for the sandbox)."""

    members: dict[str, Cluster] = {}
    sandboxes: list[Any] = []
    if policy.clusters and settings.cluster != "sandbox":
        contexts, _, path = kubeconfig_contexts()
        check_contexts(policy, contexts, path)  # one sentence with the policy's line, before any client
    names: list[str | None] = [*policy.clusters] or [None]
    for name in names:
        key, cluster, sandbox = await build_member(settings, policy, name, closers, warmers)
        sandboxes += [sandbox] if sandbox is not None else []
        members[key] = cluster
    default = default_cluster(policy.clusters) if policy.clusters else next(iter(members))
    return ClusterRegistry(members, default=default), (sandboxes[0] if sandboxes else None)


async def build_member(
    settings: Settings, policy: Policy, name: str | None, closers: list[Callable[[], Any]],
    warmers: list[Callable[[], Awaitable[Any]]] | None = None,
) -> tuple[str, Cluster, Any]:
    """One cluster's executor (and its sandbox API server in sandbox mode), by name (None: the one cluster)."""
    from adapters.kubernetes.executor import KubernetesCluster

    sandbox: Any = None
    if settings.cluster == "sandbox":
        from adapters.kubernetes.sandbox import SandboxCluster

        sandbox = SandboxCluster(seed=True)
        url = await asyncio.to_thread(sandbox.start)
        closers.append(sandbox.stop)
        cluster = KubernetesCluster.for_url(url, sandbox.token, request_timeout=settings.kube_timeout_s)
        key = name or "sandbox"
    else:
        context = context_of(name, policy.clusters[name]) if name else None
        cluster = KubernetesCluster.from_kubeconfig(context=context, request_timeout=settings.kube_timeout_s)
        key = name or _current_context()
    closers.append(cluster.close)
    if warmers is not None:
        warmers.append(cluster.warm_up)
    return key, cluster, sandbox


def _current_context() -> str:
    try:
        return kubeconfig_contexts()[1] or "default"
    except SignoffError:
        return "in-cluster"


def sandbox_clusters(text: str | None) -> list[str] | None:
    """`--clusters eu-1,us-1`: the names of the sandbox clusters to serve (None: the one sandbox)."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise SignoffError("--clusters needs names, like --clusters eu-1,us-1")
    for name in names:
        problem = cluster_problem(name)
        if problem is not None:
            raise SignoffError(f"--clusters: {problem}")
    if len(set(names)) != len(names):
        raise SignoffError(f"--clusters names a cluster twice ({text}); name each once")
    return names
