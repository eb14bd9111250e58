"""The OpenAPI 3 document of signoff's HTTP API, served at GET /api/v1/openapi.json.

The schemas of what the API returns come from the pydantic models themselves, and
tests/e2e/test_openapi.py checks the paths against the aiohttp routes, so the document
cannot drift from the code.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from bot.openapi_lists import list_paths, list_schemas
from core.app.alert_outcomes import AlertOutcome
from core.domain.approvals import ApprovalRequest
from core.domain.events import TimelineEvent
from core.domain.incidents import Incident
from core.domain.playbooks import Playbook

OPENAPI_PATH = "/api/v1/openapi.json"

_REF = "#/components/schemas/{model}"


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


_ERROR = _json(_ref("Error"), "An error: a stable code and a sentence for people.")
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_AUTH_ERRORS = {
    "401": _json(_ref("Error"), "No or wrong `Authorization: Bearer <SIGNOFF_API_TOKEN>`."),
    "404": _json(_ref("Error"), "The API is off (no SIGNOFF_API_TOKEN), or the request does not exist."),
    "422": _ERROR,
}


@cache
def openapi_document() -> dict[str, Any]:
    _, generated = models_json_schema(
        [(ApprovalRequest, "serialization"), (TimelineEvent, "serialization"), (AlertOutcome, "serialization"),
         (Incident, "serialization"), (Playbook, "serialization")],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = dict(generated["$defs"])
    schemas["Error"] = {
        "type": "object", "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    }
    schemas["NewRequest"] = {
        "type": "object", "required": ["action", "requested_by"],
        "properties": {
            "action": {"type": "string", "maxLength": 500, "example": "rollout restart deployment/api -n prod"},
            "requested_by": {"type": "string", "maxLength": 200,
                             "description": "A person of the policy (by name or account), else a new name."},
            "risk": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
            "reason": {"type": "string", "maxLength": 500},
            "incident_id": {"type": "string", "maxLength": 64, "example": "INC-7"},
        },
    }
    schemas["RequestView"] = {
        "allOf": [_ref("ApprovalRequest"), {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The operation as a kubectl command."},
                "signed": {"type": "integer", "description": "Signatures counted towards the quorum."},
            },
        }],
    }
    schemas["RequestWithTimeline"] = {
        "allOf": [_ref("RequestView"), {
            "type": "object",
            "properties": {"timeline": {"type": "array", "items": _ref("TimelineEvent")}},
        }],
    }
    schemas["AlertOutcomes"] = {
        "type": "object", "required": ["alerts"],
        "properties": {"alerts": {"type": "array", "items": _ref("AlertOutcome")}},
    }
    schemas.update(list_schemas())
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "signoff",
            "version": "1",
            "description": "Multi-party approval of Kubernetes operations: create requests, read them, "
                           "and feed Alertmanager alerts into incidents.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "The value of SIGNOFF_API_TOKEN."}},
        },
        "paths": {
            "/api/v1/requests": {"post": {
                "summary": "Create an approval request",
                "operationId": "createRequest",
                "security": _BEARER,
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("NewRequest")}}},
                "responses": {"201": _json(_ref("RequestView"), "The request, pending its signatures."),
                              **_AUTH_ERRORS,
                              "403": _json(_ref("Error"), "A policy with a roster does not list `requested_by`."),
                              "429": {**_json(_ref("Error"), "Over `[requests] max_per_person_per_minute`."),
                                      "headers": {"Retry-After": {"schema": {"type": "integer"},
                                                                  "description": "Seconds to wait."}}}},
            }},
            "/api/v1/requests/{request_id}": {"get": {
                "summary": "A request with its signatures and timeline",
                "operationId": "getRequest",
                "security": _BEARER,
                "parameters": [{"name": "request_id", "in": "path", "required": True,
                                "schema": {"type": "string", "example": "R-42"}}],
                "responses": {"200": _json(_ref("RequestWithTimeline"), "The request."), **_AUTH_ERRORS},
            }},
            "/api/v1/alerts": {"post": {
                "summary": "Alertmanager webhook (version 4 payload)",
                "operationId": "receiveAlerts",
                "security": _BEARER,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "description": "Alertmanager's webhook payload, version 4.",
                    "required": ["alerts"],
                    "properties": {"version": {"type": "string", "example": "4"},
                                   "alerts": {"type": "array", "items": {"type": "object"}}},
                }}}},
                "responses": {"200": _json(_ref("AlertOutcomes"),
                                           "One outcome per alert; a bad alert never fails the others."),
                              "503": _json(_ref("AlertOutcomes"),
                                           "signoff failed on some alert (see its `error`): Alertmanager sends "
                                           "the group again, and what was already taken is not repeated."),
                              **_AUTH_ERRORS},
            }},
            OPENAPI_PATH: {"get": {
                "summary": "This document",
                "operationId": "openapi",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }},
            "/healthz": {"get": {
                "summary": "Liveness: the database is migrated, the cluster answered, the server listens",
                "operationId": "healthz",
                "security": [],
                "responses": {"200": _json({"type": "object", "properties": {"status": {"const": "ok"}}}, "Alive.")},
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (text exposition format)",
                "operationId": "metrics",
                "security": [],
                "responses": {"200": {"description": "Metrics.",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }},
        },
    }
    for path, item in list_paths(_AUTH_ERRORS).items():
        document["paths"].setdefault(path, {}).update(item)
    return document
