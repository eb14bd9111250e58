"""Who may see the web view: a signed session (from the API token through /ui/login, or from OIDC), or the API
token as `Authorization: Bearer` for scripts. Anyone else gets the login page and no data."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
import structlog
from aiohttp import web

from bot.ui.oidc import OidcClient, SignInRefused, person_for
from bot.ui.sessions import (
    SESSION_COOKIE,
    Session,
    clear_cookie,
    is_https,
    read_session,
    seal,
    set_cookie,
    signing_key,
    start_session,
    unseal,
)

if TYPE_CHECKING:
    from bot.bootstrap import App

log = structlog.get_logger(__name__)
OIDC_COOKIE = "signoff_oidc"
OIDC_ROUND_TRIP_S = 600
PUBLIC = ("/ui/login", "/ui/oidc/start", "/ui/oidc/callback", "/ui/static/")
BEARER = "API token (Bearer)"


@dataclass
class UiContext:
    app_key: web.AppKey[App]
    _oidc: OidcClient | None = field(default=None, init=False)

    def oidc(self, app: App) -> OidcClient | None:
        settings = app.settings
        if not settings.oidc_enabled:
            return None
        if self._oidc is None:
            assert settings.oidc_issuer is not None and settings.oidc_client_id is not None
            secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
            self._oidc = OidcClient(settings.oidc_issuer, settings.oidc_client_id, secret)
        return self._oidc


UI_KEY: web.AppKey[UiContext] = web.AppKey("signoff_ui", UiContext)


def app_of(request: web.Request) -> App:
    return request.config_dict[request.app[UI_KEY].app_key]


def _key(app: App, purpose: str) -> bytes:
    configured = app.settings.session_key.get_secret_value() if app.settings.session_key else None
    return signing_key(configured, purpose)


def _bearer(app: App, request: web.Request) -> bool | None:
    """True: the API token; False: some other bearer token; None: no Authorization header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, given = header.partition(" ")
    token = app.settings.api_token
    if token is None or scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode())


def identify(request: web.Request) -> tuple[Session | None, bool | None]:
    """Who is asking: the session (None for nobody), and whether a bearer token was sent and was the right one."""
    app = app_of(request)
    bearer = _bearer(app, request)
    if bearer:
        return Session(who=BEARER, via="bearer", expires=0, csrf=""), True
    if bearer is False:  # a script with a wrong token is refused even when the browser also has a session
        return None, False
    session = read_session(request, _key(app, "session"))
    if session is not None and session.via == "oidc" and session.who not in app.policy.people:
        return None, None  # taken off the policy since signing in: the session ends with the roster entry
    return session, None


def current(request: web.Request) -> Session:
    """The caller of a page the gate let through."""
    session, _ = identify(request)
    if session is None:
        raise web.HTTPUnauthorized(text="Sign in at /ui/login.")
    return session


@web.middleware
async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith(PUBLIC):
        session, bearer = identify(request)
        if session is None:
            page = await login_page(request, status=401, message=(
                "That bearer token is not SIGNOFF_API_TOKEN." if bearer is False else None))
            if request.cookies.get(SESSION_COOKIE):
                clear_cookie(page, request, SESSION_COOKIE)  # tampered, foreign or expired
            return page
    response: web.StreamResponse = await handler(request)
    return response


async def login_page(request: web.Request, *, status: int = 200, message: str | None = None) -> web.Response:
    app = app_of(request)
    token_on, oidc_on = app.settings.api_token is not None, app.settings.oidc_enabled
    if message is None and not token_on and not oidc_on:
        message = ("The web view has no way to sign in yet: set SIGNOFF_OIDC_ISSUER and SIGNOFF_OIDC_CLIENT_ID "
                   "(sign-in with your identity provider), or SIGNOFF_API_TOKEN (sign-in with the token).")
    return aiohttp_jinja2.render_template("login.html", request, {
        "message": message, "token_on": token_on, "oidc_on": oidc_on, "session": None, "nav": "login",
    }, status=status)


async def login_form(request: web.Request) -> web.StreamResponse:
    if read_session(request, _key(app_of(request), "session")) is not None:
        raise web.HTTPSeeOther("/ui/")
    return await login_page(request)


async def login_with_token(request: web.Request) -> web.StreamResponse:
    app = app_of(request)
    form = await request.post()
    given = form.get("token")
    token = app.settings.api_token
    if token is None:
        return await login_page(request, status=403, message=(
            "Signing in with the API token is off because SIGNOFF_API_TOKEN is not set."
            + (" Use “Sign in with your identity provider”." if app.settings.oidc_enabled else "")))
    if not isinstance(given, str) or not hmac.compare_digest(given.strip().encode(),
                                                             token.get_secret_value().encode()):
        log.info("ui.login_refused", via="token")
        return await login_page(request, status=401, message=(
            "That is not the API token. Paste the value of SIGNOFF_API_TOKEN exactly, or ask whoever runs signoff."))
    response = web.HTTPSeeOther("/ui/")
    start_session(response, request, Session.start("API token", "token"), _key(app, "session"))
    log.info("ui.signed_in", via="token")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    check_csrf(request, await request.post())
    response = web.HTTPSeeOther("/ui/login")
    clear_cookie(response, request, SESSION_COOKIE)
    raise response


def check_csrf(request: web.Request, form: Any) -> None:
    """Forms that change something carry the session's token; a bearer caller has no cookie to ride on."""
    session = current(request)
    if session.via == "bearer":
        return
    given = form.get("csrf")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise web.HTTPForbidden(text="This form is out of date or came from another site; reload the page and "
                                     "press the button again.")


def _redirect_uri(request: web.Request) -> str:
    scheme = "https" if is_https(request) else request.scheme
    return f"{scheme}://{request.host}/ui/oidc/callback"


async def oidc_start(request: web.Request) -> web.StreamResponse:
    app = app_of(request)
    client = request.app[UI_KEY].oidc(app)
    if client is None:
        return await login_page(request, status=404, message=(
            "OIDC sign-in is not configured: set SIGNOFF_OIDC_ISSUER and SIGNOFF_OIDC_CLIENT_ID, or sign in "
            "with the API token."))
    try:
        url, kept = await client.authorize_url(_redirect_uri(request))
    except SignInRefused as exc:
        return await login_page(request, status=502, message=exc.sentence)
    response = web.HTTPFound(url)
    set_cookie(response, request, OIDC_COOKIE, seal({**kept, "expires": _in(OIDC_ROUND_TRIP_S)}, _key(app, "oidc")),
               OIDC_ROUND_TRIP_S)
    raise response


def _in(seconds: int) -> int:
    return int(time.time()) + seconds


async def oidc_callback(request: web.Request) -> web.StreamResponse:
    app = app_of(request)
    client = request.app[UI_KEY].oidc(app)
    kept = unseal(request.cookies.get(OIDC_COOKIE), _key(app, "oidc"))
    state = request.query.get("state", "")
    try:
        if client is None:
            raise SignInRefused("OIDC sign-in is not configured here; sign in with the API token.")
        if "error" in request.query:
            raise SignInRefused(f"The sign-in provider said no ({request.query['error'][:80]}); try again.")
        if kept is None or not hmac.compare_digest(state.encode(), str(kept.get("state", "")).encode()):
            raise SignInRefused("This sign-in did not start here or took longer than 10 minutes; start again.")
        claims = await client.claims(request.query.get("code", ""), {k: str(v) for k, v in kept.items()})
        person = person_for(app.policy, claims)
    except SignInRefused as exc:
        log.info("ui.login_refused", via="oidc")
        page = await login_page(request, status=403, message=exc.sentence)
        clear_cookie(page, request, OIDC_COOKIE)
        return page
    response = web.HTTPSeeOther("/ui/")
    clear_cookie(response, request, OIDC_COOKIE)
    start_session(response, request, Session.start(person.name, "oidc"), _key(app, "session"))
    log.info("ui.signed_in", via="oidc", person=person.name)
    raise response
