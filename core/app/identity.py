"""`[execution] as = "requester"`: the cluster is asked first whether the requester may do this (a
SubjectAccessReview per verb), and every call made for the request then impersonates them.

Refused at once, nothing stored: a requester without a `kubernetes` user, a verb the cluster's RBAC denies,
and a review that cannot be made (it never counts as allowed).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.domain.access import Access, access_needed
from core.domain.cluster import ClusterError
from core.domain.operations import Identity, Operation
from core.domain.policy import Person, Policy
from core.errors import NotAuthorized


@runtime_checkable
class AccessReviewer(Protocol):
    """A cluster that answers SubjectAccessReviews (for the operation's cluster and identity)."""

    async def allowed(self, op: Operation, access: Access) -> bool: ...


async def as_requester(policy: Policy, cluster: object, op: Operation, by: Person, *, system: bool) -> Operation:
    """The operation as it will run: unchanged with `as = "signoff"` (and for signoff's own proposals),
    else carrying the requester's identity once the cluster said yes to every verb it needs."""
    if policy.execution.as_ != "requester" or system:
        return op
    if not by.kubernetes:
        raise NotAuthorized(
            f"{by.name} has no Kubernetes user, and this cluster runs every request as its requester: ask an admin "
            f"to add `kubernetes = \"<user>\"` (and `kubernetes_groups`) to [people.{by.name}] in {policy.source}.")
    op = op.model_copy(update={"identity": Identity(user=by.kubernetes, groups=by.kubernetes_groups)})
    if not isinstance(cluster, AccessReviewer):
        raise NotAuthorized(f"I cannot ask this cluster whether {by.kubernetes} may {op.command()}, so I do not "
                            "run it as them; nothing was stored.")
    for access in access_needed(op):
        try:
            allowed = await cluster.allowed(op, access)
        except ClusterError as exc:
            raise NotAuthorized(
                f"I could not ask the cluster whether {by.kubernetes} may {access.text()} ({exc.message}); "
                "a review that cannot be made never counts as allowed. Nothing was stored; ask again when the "
                "cluster answers.") from None
        if not allowed:
            raise NotAuthorized(
                f"The cluster's RBAC does not allow {by.name} ({by.kubernetes}) to {access.text()}, so signoff "
                "will not do it for them. Nothing was stored; ask someone who may, or ask for the RBAC.")
    return op
