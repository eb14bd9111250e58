"""The sentences of pinning: a stale request, one waiting its turn on its target, and a request made again."""

from __future__ import annotations

from core.domain.approvals import ApprovalRequest

REQUEST_AGAIN_LABEL = "Request again"


def stale_note(request: ApprovalRequest) -> str:
    what = request.outcome.summary if request.outcome is not None else "the target changed"
    return (f"🔁 {request.id} is stale: {what}. Nobody signed the target as it is now; "
            f"click Request again (or `rerequest {request.id}`) to ask for signatures on it.")


def waiting_note(request: ApprovalRequest, ahead: str) -> str:
    return (f"⏸️ {request.id} is approved and waiting for {ahead}: one operation per target at a time, "
            "in the order approved. It runs when that one has ended (after checking its target again).")


def waiting_text(request: ApprovalRequest) -> str:
    return f"approved: waiting for {request.waiting_for} (one operation per target at a time)"


def not_stale_text(request: ApprovalRequest) -> str:
    return (f"{request.id} is {request.status}, not stale: Request again is only for a request whose target "
            f"changed after it was made. To ask for the same change, use `/signoff request {request.action}`.")


def already_again_text(old: ApprovalRequest, open_request: ApprovalRequest) -> str:
    return (f"{old.id} was already asked again: {open_request.id} (`{open_request.operation.command()}`) is "
            f"{open_request.status}; sign or follow that one.")


def rerequested_text(old: ApprovalRequest, new: ApprovalRequest) -> str:
    return (f"Requested again as {new.id} (from stale {old.id}): `{new.operation.command()}`, "
            f"needs {new.quorum} signature(s).")


def overtaken_note(seconds: float, why: str) -> str:
    """How a verification that a later change of its target overtook ended (succeeded, no way back proposed)."""
    return f"overtaken after {max(0, round(seconds))} s: {why}; not waiting for its own effect"
