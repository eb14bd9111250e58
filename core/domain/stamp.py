"""The annotations every object signoff changes carries: which request, approved by whom."""

from __future__ import annotations

from core.domain.approvals import ApprovalRequest

REQUEST_ANNOTATION = "signoff.dev/request"
APPROVED_BY_ANNOTATION = "signoff.dev/approved-by"


def stamp_of(request: ApprovalRequest) -> dict[str, str]:
    """`signoff.dev/request` (the request id) and `signoff.dev/approved-by` (the signers, comma-separated,
    in the order they signed), so `kubectl describe` shows who and why."""
    signers = list(dict.fromkeys(signature.person for signature in request.signatures))
    return {REQUEST_ANNOTATION: request.id, APPROVED_BY_ANNOTATION: ",".join(signers)}
