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
from core.app.service import MAX_REASON
from core.domain.approvals import ApprovalRequest
from core.domain.events import TimelineEvent
from core.domain.incidents import Incident
from core.domain.operations import MAX_ACTION_LENGTH
from core.domain.playbooks import Playbook

OPENAPI_PATH = "/api/v1/openapi.json"

_REF = "#/components/schemas/{model}"

# Every `error` code an /api/v1 answer can carry, with what it means (tests/integration/test_api_contract.py).
ERROR_CODES: dict[str, str] = {
    "api_disabled": "404: SIGNOFF_API_TOKEN is not set, so the API is off.",
    "unauthorized": "401: no or the wrong `Authorization: Bearer <SIGNOFF_API_TOKEN>`.",
    "not_found": "404: no such request, or no such endpoint.",
    "method_not_allowed": "405: the endpoint does not take this method (see `Allow`).",
    "body_too_large": "413: the body is over 64 KiB (4 MiB for alerts).",
    "invalid_filter": "400: a list's query parameter is unknown or has a bad value.",
    "invalid_cursor": "400: a list's `cursor` is not one this list gave out.",
    "invalid_json": "422: the body is not JSON.",
    "duplicate_key": "422: a JSON object gives the same key twice.",
    "invalid_body": "422: the body is JSON but not the object this endpoint takes.",
    "missing_field": "422: a required field is missing.",
    "invalid_field": "422: a field has the wrong type.",
    "field_too_long": "422: a field is over its documented maxLength.",
    "invalid_name": "422: `requested_by` holds control or direction characters, or nothing but spaces.",
    "invalid_risk": "422: `risk` is not low, medium, high or critical.",
    "invalid_incident_id": "422: `incident_id` is not an incident id like INC-7.",
    "unknown_operation": "422: the action is not one of the accepted forms (the message lists them).",
    "invalid_payload": "422: an alerts body that is not Alertmanager's version 4 webhook payload.",
    "policy": "422: the policy refuses the request (the message says which rule).",
    "quorum_unreachable": "422: the roster has too few people who may sign at this risk.",
    "unknown_cluster": "422: the request names a cluster the policy does not have (the message lists them).",
    "policy_file": "422: `POST /-/reload` found the policy file invalid (the message names its file and line); "
                   "the old policy stays in force.",
    "no_policy_file": "409: `POST /-/reload` with the built-in policy in force: there is no file to read.",
    "wrong_channel": "422: the cluster takes requests only from its `channels` (the message names them).",
    "change_freeze": "422: a change freeze refuses the request (`effect = \"refuse\"`, or critical under `raise`); "
                     "the message names it and its end.",
    "target_missing": "422: the target does not exist in the cluster.",
    "cluster_rejected": "422: the cluster refused the dry run (the message says why).",
    "cluster_unavailable": "422: the cluster did not answer.",
    "cluster_error": "422: the cluster answered with an error.",
    "database_unavailable": "422: the database did not answer.",
    "unknown_person": "403: a policy with a roster does not list `requested_by`.",
    "rate_limited": "429: over `[requests] max_per_person_per_minute` (see `Retry-After`).",
    "internal_error": "500: signoff failed; its log says why.",
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


_ERROR = _json(_ref("Error"), "An error: a stable code and a sentence for people.")
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_AUTH_ERRORS = {
    "401": _json(_ref("Error"), "No or wrong `Authorization: Bearer <SIGNOFF_API_TOKEN>`."),
    "404": _json(_ref("Error"), "The API is off (no SIGNOFF_API_TOKEN), or the request does not exist."),
    "405": _json(_ref("Error"), "The endpoint does not take this method; `Allow` lists those it takes."),
    "413": _json(_ref("Error"), "The body is over 64 KiB (4 MiB for alerts)."),
    "422": _ERROR,
    "500": _json(_ref("Error"), "signoff failed on this request; its log says why."),
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
        "properties": {
            "error": {"type": "string", "examples": list(ERROR_CODES),
                      "description": "A stable code: " + "; ".join(f"`{c}` {m}" for c, m in ERROR_CODES.items())},
            "message": {"type": "string", "description": "Why, and what would work, for a person."},
        },
    }
    schemas["NewRequest"] = {
        "type": "object", "required": ["action", "requested_by"],
        "properties": {
            "action": {"type": "string", "maxLength": MAX_ACTION_LENGTH,
                       "example": "rollout restart deployment/api -n prod"},
            "requested_by": {"type": "string", "maxLength": 200,
                             "description": "A person of the policy (by name or account), else a new name."},
            "risk": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
            "reason": {"type": "string", "maxLength": MAX_REASON},
            "incident_id": {"type": "string", "maxLength": 64, "example": "INC-7"},
            "cluster": {"type": "string", "maxLength": 64, "example": "eu-1",
                        "description": "A cluster of the policy's [clusters]; none: the default cluster."},
        },
    }
    schemas["RequestView"] = {
        "allOf": [_ref("ApprovalRequest"), {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The operation as a kubectl command."},
                "signed": {"type": "integer", "description": "Signatures counted towards the quorum."},
                "changes": {"type": "array", "items": {"type": "string"}, "example": ["replicas: 3 → 6"],
                            "description": "What the dry run at request time showed, as the card lists it."},
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
            "/-/reload": {"post": {
                "summary": "Re-read the policy file, as SIGHUP does",
                "operationId": "reloadPolicy",
                "security": _BEARER,
                "responses": {"200": _json({"type": "object", "properties": {
                    "status": {"const": "reloaded"}, "source": {"type": "string"},
                    "clusters": {"type": "array", "items": {"type": "string"}}, "people": {"type": "integer"}}},
                    "The new policy is in force."),
                              "409": _json(_ref("Error"), "The built-in policy is in force (`no_policy_file`)."),
                              **_AUTH_ERRORS},
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
