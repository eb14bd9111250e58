"""The list endpoints' part of the OpenAPI document (bot/openapi.py adds it to the rest)."""

from __future__ import annotations

from typing import Any

from core.domain.approvals import RequestStatus
from core.domain.incidents import IncidentStatus
from core.domain.listing import MAX_AUDIT_LIMIT, MAX_LIMIT
from core.domain.playbooks import PlaybookStatus

_REF = "#/components/schemas/{model}"
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _status(values: list[str]) -> dict[str, Any]:
    return _query("status", "Only these statuses (comma-separated, or the parameter repeated).",
                  {"type": "string", "example": ",".join(values[:2]), "description": "One or more of: "
                   + ", ".join(values)})


_LIMIT = _query("limit", "Items per page.", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50})
_CURSOR = _query("cursor", "The `next_cursor` of the previous page, as given.", {"type": "string"})
_SINCE = _query("since", "Created at or after this date or RFC 3339 time.",
                {"type": "string", "example": "2026-12-01T00:00:00Z"})


def _page_of(item: str) -> dict[str, Any]:
    return {
        "type": "object", "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": _ref(item)},
                       "next_cursor": {"type": ["string", "null"],
                                       "description": "Pass as `cursor` for the next page; null on the last."}},
    }


def list_schemas() -> dict[str, Any]:
    audit = _page_of("ChainEvent")
    audit["properties"]["next_after"] = {"type": ["integer", "null"],
                                        "description": "Pass as `after` for the next page; null at the head."}
    chain_event = {
        "type": "object", "required": ["seq", "at", "type", "prev_hash", "hash"],
        "description": "A timeline event as the body its hash covers, plus `hash`: without SIGNOFF_AUDIT_KEY, "
                       "hash = sha256(prev_hash + the event without `hash` as JSON with sorted keys and no spaces); "
                       "`at` is in its stored form (YYYY-MM-DDTHH:MM:SS.ffffffZ).",
        "properties": {name: {"type": kind} for name, kind in [
            ("seq", "integer"), ("at", "string"), ("type", "string"), ("status", "string"), ("title", "string"),
            ("detail", "string"), ("actor", "string"), ("actor_role", "string"), ("request_id", ["string", "null"]),
            ("incident_id", ["string", "null"]), ("prev_hash", "string"), ("digest", "string"), ("hash", "string")]},
    }
    return {"ChainEvent": chain_event, "RequestPage": _page_of("RequestView"), "IncidentPage": _page_of("Incident"),
            "PlaybookPage": _page_of("Playbook"), "AuditPage": audit}


def _list(summary: str, operation: str, page: str, parameters: list[dict[str, Any]],
          errors: dict[str, Any]) -> dict[str, Any]:
    return {"get": {
        "summary": summary, "operationId": operation, "security": _BEARER, "parameters": parameters,
        "responses": {"200": {"description": "One page, newest first.",
                              "content": {"application/json": {"schema": _ref(page)}}}, **errors},
    }}


def list_paths(shared: dict[str, Any]) -> dict[str, Any]:
    """Path items by path; `shared` are the shared 401/404 answers."""
    errors = {**{code: answer for code, answer in shared.items() if code != "422"}, "400": {
        "description": "An unknown parameter, a bad value or a cursor this list did not give out (named).",
        "content": {"application/json": {"schema": _ref("Error")}}}}
    return {
        "/api/v1/requests": _list(
            "Requests, newest first", "listRequests", "RequestPage",
            [_status([s.value for s in RequestStatus]),
             _query("requester", "Only requests by this person.", {"type": "string"}), _SINCE, _LIMIT, _CURSOR],
            errors),
        "/api/v1/incidents": _list(
            "Incidents, newest first", "listIncidents", "IncidentPage",
            [_status([s.value for s in IncidentStatus]), _SINCE, _LIMIT, _CURSOR], errors),
        "/api/v1/playbooks": _list(
            "Playbooks, newest first", "listPlaybooks", "PlaybookPage",
            [_status([s.value for s in PlaybookStatus]), _LIMIT, _CURSOR], errors),
        "/api/v1/audit": {"get": {
            "summary": "The audit chain (timeline events) in chain order, with their hashes",
            "operationId": "listAudit", "security": _BEARER,
            "parameters": [
                _query("after", "Events with a larger seq (0: from the start).", {"type": "integer", "minimum": 0}),
                _query("limit", "Events per page.", {"type": "integer", "minimum": 1, "maximum": MAX_AUDIT_LIMIT,
                                                     "default": 100}),
            ],
            "responses": {"200": {"description": "Events in chain order.",
                                  "content": {"application/json": {"schema": _ref("AuditPage")}}}, **errors},
        }},
    }
