"""A kubeconfig whose user has a static token needs no refresh before every call (the client's hook re-reads the
environment's proxy variables each time, ~0.7 ms a call); one whose credentials can expire keeps it."""

from __future__ import annotations

from pathlib import Path

from adapters.kubernetes.connect import from_kubeconfig

KUBECONFIG = """apiVersion: v1
kind: Config
current-context: static
clusters:
- name: c
  cluster: {server: "http://127.0.0.1:1"}
contexts:
- name: static
  context: {cluster: c, user: token}
- name: plugin
  context: {cluster: c, user: plugin}
users:
- name: token
  user: {token: s3cret}
- name: plugin
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: PLUGIN, interactiveMode: Never}
"""

# An exec credential plugin, as cloud CLIs are: a short-lived token with its expiry.
PLUGIN = """#!/bin/sh
echo '{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
 "status": {"token": "short-lived", "expirationTimestamp": "2099-01-01T00:00:00Z"}}'
"""


def test_a_static_token_is_not_refreshed_before_every_call(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    static = from_kubeconfig(str(path), "static")
    assert static.configuration.refresh_api_key_hook is None
    assert static.configuration.api_key["BearerToken"] == "Bearer s3cret"  # the token itself still goes out
    assert from_kubeconfig(str(path)).configuration.refresh_api_key_hook is None  # the current context


def test_credentials_that_can_expire_keep_the_clients_refresh(tmp_path: Path) -> None:
    plugin = tmp_path / "credential-plugin"
    plugin.write_text(PLUGIN)
    plugin.chmod(0o755)
    path = tmp_path / "config"
    path.write_text(KUBECONFIG.replace("PLUGIN", str(plugin)))
    loaded = from_kubeconfig(str(path), "plugin")
    assert loaded.configuration.api_key["BearerToken"] == "Bearer short-lived"
    assert loaded.configuration.refresh_api_key_hook is not None
