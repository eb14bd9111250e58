"""The change a request would make, shown on its card: a server-side dry run when the request is made.

A definite refusal there (NotFound, Invalid, Forbidden, a rollback with no previous revision, a target whose
spec cannot be read) refuses the request at once: nothing is stored and nobody is asked to sign blind. A
transient failure (5xx, 429, a timeout) keeps the request, and its card says the change could not be
previewed. A scale that a HorizontalPodAutoscaler would undo is refused, naming the HPA and its bounds.
"""

from __future__ import annotations

import structlog

from core.app.clusters import ClusterRegistry
from core.domain.changes import Preview, PreviewRefused, refuse_if_autoscaled
from core.domain.cluster import ClusterError, ClusterRejected, ClusterUnavailable, TargetMissing
from core.domain.operations import Operation

log = structlog.get_logger(__name__)

NOTHING_STORED = "Nothing was stored and nobody was asked to sign."
DEFINITE_STATUSES = frozenset({400, 401, 403, 405, 415, 422})


async def preview_request(clusters: ClusterRegistry, op: Operation) -> Preview | None:
    """The preview to store on the request, None from a cluster that cannot preview; raises the refusal."""
    where = f" in namespace {op.namespace}" if op.namespace else ""
    try:
        preview = await clusters.preview(op)
    except TargetMissing:
        log.info("request.preview_refused", target=op.target_ref, namespace=op.namespace, reason="NotFound")
        raise PreviewRefused(
            f"{op.target_ref}{where} does not exist, so `{op.command()}` cannot be signed: check the name "
            f"(`kubectl get {op.target_ref.split('/', 1)[0]}{' -n ' + op.namespace if op.namespace else ''}` "
            f"lists them) and ask again. {NOTHING_STORED}") from None
    except ClusterRejected as exc:
        if not definite(exc):
            return _unavailable(op, exc)
        log.info("request.preview_refused", target=op.target_ref, namespace=op.namespace, reason=exc.reason)
        if exc.status in (401, 403):
            who = op.identity.user if op.identity is not None else "signoff's account"
            raise PreviewRefused(
                f"The spec of {op.target_ref}{where} could not be read or dry-run as {who} ({exc.message}), and "
                f"nobody signs blind: give {who} get and patch access there, then ask again. {NOTHING_STORED}",
            ) from None
        raise PreviewRefused(
            f"The dry run of `{op.command()}` was refused, so it would fail when run: {exc.message} "
            f"{NOTHING_STORED}") from None
    except ClusterUnavailable as exc:
        return _unavailable(op, exc)
    refuse_if_autoscaled(op, preview)
    return preview


def definite(error: ClusterRejected) -> bool:
    """A refusal the same call would get again: Invalid, Forbidden, a bad request, no previous revision, a
    paused deployment. A 409 Conflict (someone else wrote first) is not: asked again, it may pass."""
    return error.status in DEFINITE_STATUSES or error.status is None


def _unavailable(op: Operation, exc: ClusterError) -> Preview:
    log.warning("request.preview_unavailable", target=op.target_ref, namespace=op.namespace,
                reason=exc.reason, status=exc.status)
    status = f"{exc.status} {exc.reason}" if exc.status else exc.reason
    return Preview(unavailable=f"the dry run could not be made now ({status}); "
                               "the dry run before execution checks it again")
