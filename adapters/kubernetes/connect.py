"""Connecting to one cluster: a kubeconfig context, the pod's service account, or a URL and token.

Each function builds one `ApiClient` with its own `Configuration` (nothing global: the client's
default configuration is never touched), so several clusters, one context each, live side by side.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog
import urllib3
from kubernetes import client, config

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
    log.info("kubernetes.configured", source="kubeconfig", host=configuration.host, context=context)
    return client.ApiClient(configuration)


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
