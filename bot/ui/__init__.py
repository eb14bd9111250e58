"""The web view at /ui/: read-only, server-rendered pages (Jinja2 through aiohttp-jinja2, no JavaScript).

`add_ui_routes(http, app_key)` mounts it on the one aiohttp server as a sub-application with its own gate
(sign-in) and security headers; the pages are HTML for people, not part of the JSON API and its OpenAPI document.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from bot.ui.auth import UI_KEY, UiContext, gate, login_form, login_with_token, logout, oidc_callback, oidc_start
from bot.ui.pages import (
    audit_page,
    audit_verify,
    breakglass_page,
    incident_list,
    playbook_list,
    request_list,
    request_page,
)

if TYPE_CHECKING:
    from bot.bootstrap import App

UI_PREFIX = "/ui"
STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"

# No script at all, nothing from elsewhere, never in a frame.
CSP = ("default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if not request.path.startswith(UI_PREFIX + "/static/"):
        response.headers["Cache-Control"] = "no-store"  # pages carry history: not kept by browsers or proxies


def chat_text(value: object) -> Markup:
    """Card text as chat writes it: escaped, with `code` spans shown as code."""
    return Markup(re.sub(r"`([^`\n]+)`", r"<code>\1</code>", str(escape(str(value)))))


async def _to_slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(UI_PREFIX + "/")


def add_ui_routes(http: web.Application, app_key: web.AppKey[App]) -> None:
    ui = web.Application(middlewares=[gate])
    ui[UI_KEY] = UiContext(app_key)
    aiohttp_jinja2.setup(ui, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                         undefined=jinja2.StrictUndefined, filters={"chat": chat_text})
    ui.on_response_prepare.append(_security_headers)
    ui.router.add_get("/", request_list)
    ui.router.add_get("/requests/{request_id}", request_page)
    ui.router.add_get("/incidents", incident_list)
    ui.router.add_get("/playbooks", playbook_list)
    ui.router.add_get("/breakglass", breakglass_page)
    ui.router.add_get("/audit", audit_page)
    ui.router.add_post("/audit/verify", audit_verify)
    ui.router.add_get("/login", login_form)
    ui.router.add_post("/login", login_with_token)
    ui.router.add_post("/logout", logout)
    ui.router.add_get("/oidc/start", oidc_start)
    ui.router.add_get("/oidc/callback", oidc_callback)
    ui.router.add_static("/static/", STATIC, append_version=False)
    http.router.add_get(UI_PREFIX, _to_slash)
    http.add_subapp(UI_PREFIX, ui)


def is_ui_path(path: str) -> bool:
    """A path of the web view (HTML for people, outside the API's OpenAPI document)."""
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")
