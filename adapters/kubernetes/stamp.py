"""The `signoff.dev/request` and `signoff.dev/approved-by` annotations on every object signoff changes,
put into the write's own patch (one write, one audit entry) wherever the API allows it."""

from __future__ import annotations

from typing import Any

from adapters.kubernetes.failures import Attempt


def stamped(body: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
    """`body` (a patch) with the attempt's annotations added to its own metadata."""
    if not attempt.stamp:
        return body
    metadata = dict(body.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **attempt.stamp}
    return {**body, "metadata": metadata}


def stamp_patch(attempt: Attempt) -> dict[str, Any]:
    """A patch carrying the annotations alone (for a write whose own patch cannot: the `scale` subresource)."""
    return {"metadata": {"annotations": dict(attempt.stamp)}}
