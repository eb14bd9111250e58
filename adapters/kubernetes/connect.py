"""Connecting to one cluster: a kubeconfig context, the pod's service account, or a URL and token.

Each function builds one `ApiClient` with its own `Configuration` (nothing global: the client's
default configuration is never touched), so several clusters, one context each, live side by side.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog
import urllib3
import yaml  # type: ignore[import-untyped]  # PyYAML comes with the kubernetes client
from kubernetes import client, config

from adapters.kubernetes.headers import GROUP_HEADER, JOIN, separate_groups
from core.domain.cluster import ClusterUnavailable

log = structlog.get_logger(__name__)


def _retries() -> urllib3.Retry:
    # Retry only connection failures (the request never left); a write whose answer timed out
    # must not be sent again behind our back, and a retried GET would multiply the timeout.
    return urllib3.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0, backoff_factor=0.1)


def kubeconfig_source(path: str | None = None) -> str | None:
    """`path`, else $KUBECONFIG, else ~/.kube/config when it exists; None: none of them."""
    source = path or os.environ.get("KUBECONFIG")
    if source:
        return source
    default = Path.home() / ".kube" / "config"
    return str(default) if default.exists() else None


def from_kubeconfig(path: str | None = None, context: str | None = None) -> client.ApiClient:
    """One context of a kubeconfig (`path`, else $KUBECONFIG, else ~/.kube/config); the pod's
    service account when there is no kubeconfig at all and signoff runs inside a cluster."""
    source = kubeconfig_source(path)
    if source is None:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return in_cluster()
        raise ClusterUnavailable(
            "No Kubernetes configuration found: set KUBECONFIG, create ~/.kube/config, "
            "or run signoff inside the cluster with a service account.",
            reason="NoConfiguration",
        )
    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=source,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (config.ConfigException, OSError, ValueError, TypeError) as error:
        raise ClusterUnavailable(
            f"Could not load the kubeconfig {source}" + (f" (context {context})" if context else "") + f": {error}",
            reason="BadConfiguration",
        ) from error
    configuration.retries = _retries()
    if not _refreshes(source, context):
        # The loader re-applies a static token before every call, and with it re-reads the proxy variables of
        # the environment: about 0.7 ms a call, for nothing. Only credentials that expire need the hook.
        configuration.refresh_api_key_hook = None
    log.info("kubernetes.configured", source="kubeconfig", host=configuration.host, context=context)
    return client.ApiClient(configuration)


def _refreshes(source: str, context: str | None) -> bool:
    """Whether the context's user has credentials that can expire (an `exec` plugin or an `auth-provider`);
    True whenever that cannot be told (several files in KUBECONFIG, an unusual file): the client's own way."""
    try:
        found, current = config.list_kube_config_contexts(config_file=source)  # type: ignore[no-untyped-call]
        chosen = next((c for c in found if c["name"] == context), None) if context else current
        if chosen is None:
            return True
        user_name = chosen["context"]["user"]
        document = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
        user = next(entry.get("user") or {} for entry in document["users"] if entry["name"] == user_name)
    except Exception:  # unsure: keep the refresh
        return True
    return "exec" in user or "auth-provider" in user


def in_cluster() -> client.ApiClient:
    """The pod's service account token and the cluster CA."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as error:
        raise ClusterUnavailable(
            f"Not running inside a Kubernetes pod with a service account: {error}",
            reason="BadConfiguration",
        ) from error
    configuration.retries = _retries()
    log.info("kubernetes.configured", source="in-cluster", host=configuration.host)
    return client.ApiClient(configuration)


def for_url(url: str, token: str) -> client.ApiClient:
    """A bearer token against a base URL: the sandbox, or a plain HTTP proxy."""
    configuration = client.Configuration(host=url.rstrip("/"), api_key={"authorization": f"Bearer {token}"})
    configuration.retries = _retries()
    return client.ApiClient(configuration)


def contexts(path: str | None = None) -> tuple[list[str], str | None, str]:
    """The contexts of the kubeconfig signoff would read, its current context, and its path (check-config)."""
    source = kubeconfig_source(path)
    if source is None:
        raise ClusterUnavailable("no kubeconfig: set KUBECONFIG or write ~/.kube/config", reason="NoKubeconfig")
    try:
        found, current = config.list_kube_config_contexts(config_file=source)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as exc:
        raise ClusterUnavailable(f"cannot read the kubeconfig {source}: {exc}", reason="BadKubeconfig") from exc
    names = [str(entry["name"]) for entry in found or []]
    return names, (str(current["name"]) if current else None), source


def impersonating(api_client: client.ApiClient, user: str, groups: tuple[str, ...]) -> client.ApiClient:
    """A client on the same configuration whose every call carries `Impersonate-User` (and `-Group`)."""
    copy = client.ApiClient(api_client.configuration)
    copy.set_default_header("Impersonate-User", user)  # type: ignore[no-untyped-call]
    if groups:
        copy.set_default_header(GROUP_HEADER, JOIN.join(groups))  # type: ignore[no-untyped-call]
        separate_groups(copy)
    return copy
