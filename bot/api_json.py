"""How the HTTP API shows a request: the stored model plus what people read (the command, who signed)."""

from __future__ import annotations

from typing import Any

from core.domain.approvals import ApprovalRequest


def request_json(request: ApprovalRequest, timeline: list[Any] | None = None) -> dict[str, Any]:
    data = request.model_dump(mode="json")
    data["command"] = request.operation.command()
    data["signed"] = request.signed
    if timeline is not None:
        data["timeline"] = [event.model_dump(mode="json") for event in timeline]
    return data
