"""Typed confirmation: for a risk level with `confirm = true`, a signer types the target's name.

One click is easy to give without reading the card; typing `api` is not. The name is the target's
own (`api` for `deployment/api`, `node-1` for a node); `deployment/api` is accepted too, and so is
surrounding white space. Nothing else: not another case, not a prefix.
"""

from __future__ import annotations

from typing import Protocol

from core.domain.operations import Operation
from core.errors import ConfirmationMismatch, ConfirmationNeeded


class RequestView(Protocol):
    """What the check reads of a request (approvals imports this module, so not the model itself)."""

    @property
    def id(self) -> str: ...

    @property
    def risk(self) -> object: ...

    @property
    def confirm(self) -> bool: ...

    @property
    def operation(self) -> Operation: ...


def expected_name(request: RequestView) -> str:
    """What a signer of this request types: the target's name."""
    return request.operation.name


def confirm_text(request: RequestView) -> str:
    """The card's line saying so, before anyone clicks."""
    return f"✍️ Signing needs the target's name typed: {expected_name(request)}"


def check_confirmation(request: RequestView, typed: str | None) -> None:
    """Raise unless `typed` names the target (only for a request whose level asks for it)."""
    if not request.confirm:
        return
    name = expected_name(request)
    if typed is None:
        raise ConfirmationNeeded(
            f"{request.id} is {request.risk} risk and asks each signer to type the target's name: "
            f"type {name} to sign it (`approve {request.id} confirm={name}`; in Slack and Discord, "
            "Approve… opens a form for it).",
            request.id, name,
        )
    given = typed.strip()
    if given not in (name, request.operation.target_ref):
        shown = given[:60] or "nothing"
        raise ConfirmationMismatch(
            f"You typed {shown}, which is not the target of {request.id}: type {name} "
            f"({request.operation.target_ref}) to sign it. Your signature was not counted.",
            request.id,
        )
