"""The OpenAPI document against the real aiohttp routes: every route documented, every documented path routed."""

from __future__ import annotations

import json
from typing import Any, cast

from bot.http import build_http_app
from bot.openapi import OPENAPI_PATH, openapi_document
from bot.ui import is_ui_path


def _routes(*, ui: bool = False) -> set[tuple[str, str]]:
    """The API's routes; with `ui`, the web view's instead: HTML pages for people (docs/web.md), which the
    OpenAPI document of the JSON API does not describe."""
    http = build_http_app(cast(Any, object()))  # the routes do not depend on the App
    routes = set()
    for route in http.router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD beside every GET
            continue
        path = route.resource.canonical  # type: ignore[union-attr]
        if is_ui_path(path) == ui:
            routes.add((path, route.method.lower()))
    return routes


def test_the_web_view_is_mounted_under_ui_and_only_there() -> None:
    pages = _routes(ui=True)
    assert {("/ui", "get"), ("/ui/", "get"), ("/ui/login", "post"), ("/ui/audit/verify", "post")} <= pages
    assert not any(path.startswith("/ui") for path, _ in _documented())


def _documented() -> set[tuple[str, str]]:
    return {(path, method) for path, item in openapi_document()["paths"].items() for method in item}


def test_every_route_is_documented_and_every_documented_path_is_routed() -> None:
    routes = _routes()
    documented = _documented()
    assert routes - documented == set(), "routes missing from bot/openapi.py"
    assert documented - routes == set(), "documented paths that bot/http.py does not serve"
    assert {("/api/v1/requests", "post"), ("/api/v1/requests/{request_id}", "get"), ("/api/v1/alerts", "post"),
            ("/healthz", "get"), ("/metrics", "get"), (OPENAPI_PATH, "get")} <= routes


def test_the_document_is_openapi_3_and_every_reference_resolves() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.")
    json.dumps(document)  # serialisable as served
    schemas = document["components"]["schemas"]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                assert ref.startswith("#/components/schemas/"), ref
                assert ref.rsplit("/", 1)[1] in schemas, ref
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    for path, item in document["paths"].items():
        for operation in item.values():
            assert operation["responses"], path
            for name in (p["name"] for p in operation.get("parameters", []) if p["in"] == "path"):
                assert "{" + name + "}" in path


def test_the_api_schemas_come_from_the_models() -> None:
    schemas = openapi_document()["components"]["schemas"]
    from core.domain.approvals import ApprovalRequest
    assert set(schemas["ApprovalRequest"]["properties"]) == set(
        ApprovalRequest.model_json_schema(mode="serialization")["properties"])
