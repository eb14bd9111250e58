"""Several clusters: the policy's `[clusters.<name>]` tables, and which cluster a request is for.

Without `[clusters]` there is one cluster, named after the current kubeconfig context (`sandbox` for the
sandbox): nothing changes for a policy that names none.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from core.domain.operations import CLUSTER_NAME
from core.domain.request_parts import Place
from core.errors import PolicyViolation

CLUSTER_KEYS = ("context", "default", "risk_floor", "protected_namespaces", "slack_channel", "discord_channel",
                "channels")


class UnknownCluster(PolicyViolation):
    code = "unknown_cluster"


class WrongChannel(PolicyViolation):
    code = "wrong_channel"


class ClusterSpec(BaseModel):
    """One `[clusters.<name>]` table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    context: str | None = None  # the kubeconfig context; None: the cluster's own name
    default: StrictBool = False
    risk_floor: str | None = None  # a Risk value, checked by the policy (kept a string: no import cycle)
    protected_namespaces: tuple[str, ...] = ()
    slack_channel: str | None = None
    discord_channel: str | None = None
    channels: tuple[str, ...] | None = Field(default=None)

    def places(self) -> dict[str, str]:
        """Where this cluster's cards go, per platform (the settings' channels otherwise)."""
        chosen = {"slack": self.slack_channel, "discord": self.discord_channel}
        return {platform: channel for platform, channel in chosen.items() if channel}


class AlertRules(BaseModel):
    """`[alerts]`: which label of an alert names its cluster."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster_label: str = "cluster"


class ExecutionRules(BaseModel):
    """`[execution]`: whose account the cluster sees. `signoff`: signoff's own; `requester`: each request's calls
    impersonate its requester (their `kubernetes` user and groups), after a SubjectAccessReview."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    as_: Literal["signoff", "requester"] = Field(default="signoff", alias="as")


def cluster_problem(name: str) -> str | None:
    if not CLUSTER_NAME.fullmatch(name):
        return (f"`{name[:40]}` is not a cluster name: letters, digits, `-`, `_` and `.`, "
                "starting and ending with a letter or digit")
    return None


def default_cluster(clusters: Mapping[str, ClusterSpec]) -> str | None:
    """The cluster marked `default = true`, else the only one, else None (the policy then has to say)."""
    marked = [name for name, spec in clusters.items() if spec.default]
    if marked:
        return marked[0]
    if len(clusters) == 1:
        return next(iter(clusters))
    return None


def context_of(name: str, spec: ClusterSpec | None) -> str:
    return spec.context if spec is not None and spec.context else name


def choose_cluster(
    *, named: Sequence[str | None], known: Collection[str], default: str | None,
) -> str:
    """The one cluster the request names (in its text, `cluster=`), or the default; refused when two
    different ones are named, when none is named and there is no default, or when the name is unknown."""
    given = sorted({name for name in named if name})
    listing = ", ".join(sorted(known))
    if len(given) > 1:
        raise UnknownCluster(f"The request names two clusters ({' and '.join(given)}); name one of: {listing}.")
    if not given:
        if default is None:
            raise UnknownCluster(f"Name the cluster (`cluster=<name>` or `--context <name>`): one of {listing}.")
        return default
    name = given[0]
    if name not in known:
        raise UnknownCluster(f"There is no cluster `{name[:60]}`; the clusters are: {listing}. "
                             "Ask again with one of them, or ask an admin to add it under [clusters].")
    return name


def check_channel(name: str, spec: ClusterSpec | None, origin: Place | None) -> None:
    """A cluster with `channels` takes requests only from those channels (not from elsewhere in chat)."""
    if spec is None or spec.channels is None or origin is None or origin.platform not in ("slack", "discord"):
        return
    if origin.channel in spec.channels:
        return
    where = ", ".join(spec.channels) or "no channel"
    raise WrongChannel(f"Requests for cluster {name} are taken only in {where}, not in {origin.channel}; "
                       "ask there.")


def alert_cluster(labels: Mapping[str, str], clusters: Mapping[str, ClusterSpec], label: str) -> str | None:
    """The cluster an alert is about: its `[alerts] cluster_label` label, else the default cluster (None).

    Without [clusters] the label is not read at all: there is one cluster, whatever the alerts call it.
    """
    if not clusters:
        return None
    name = (labels.get(label) or "").strip()
    if not name:
        return default_cluster(clusters)
    if name not in clusters:
        raise UnknownCluster(f"the alert's {label}=\"{name[:60]}\" is not a cluster signoff serves; the clusters "
                             f"are: {', '.join(clusters)}. Nothing is proposed for it; add [clusters.{name[:60]}] "
                             "to the policy, or fix the alert's label.")
    return name


def with_cluster_label(labels: Mapping[str, str], label: str) -> dict[str, str]:
    """The labels the correlation key reads, with the cluster under `cluster` whatever the policy's label is,
    so that incidents are per cluster."""
    found = dict(labels)
    if label != "cluster" and (labels.get(label) or "").strip():
        found["cluster"] = labels[label]
    return found
