"""The web view over real HTTP: who gets in (the token form, Bearer, OIDC against a fake provider with real
signed ID tokens), who gets the login page and no data, the security headers, escaping, and the pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.bootstrap import App
from bot.http import build_http_app
from bot.ui.sessions import SESSION_COOKIE, seal, signing_key
from core.domain.policy_file import parse_policy
from testkit.fakes.oidc import FakeOidcProvider
from testkit.support import make_settings, running_app

TOKEN = "web-view-token-0123456789"
POLICY = """
[people.alice]
slack = "U0ALICE"
groups = ["sre"]
email = "alice@example.com"

[people.bob]
slack = "U0BOB"
groups = ["sre"]
email = "Bob@Example.com"

[people.mallory]
slack = "U0MAL"
"""
SECRET_REASON = "the secret reason <script>alert(1)</script>"


@pytest.fixture
async def oidc() -> AsyncIterator[FakeOidcProvider]:
    provider = FakeOidcProvider()
    await provider.start()
    try:
        yield provider
    finally:
        await provider.stop()


async def _serve(app: App) -> AsyncIterator[str]:
    server = TestServer(build_http_app(app))
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
async def served(sqlite_database_url: str, oidc: FakeOidcProvider) -> AsyncIterator[tuple[App, str]]:
    settings = make_settings(sqlite_database_url, SIGNOFF_API_TOKEN=TOKEN, SIGNOFF_OIDC_ISSUER=oidc.issuer,
                             SIGNOFF_OIDC_CLIENT_ID=oidc.client_id, SIGNOFF_OIDC_CLIENT_SECRET=oidc.client_secret,
                             SIGNOFF_SESSION_KEY="session-key-for-tests-0123456789")
    async with running_app(settings, policy=POLICY) as app:
        made = await app.service.request("rollout restart deployment/api -n prod", by=app.policy.people["alice"],
                                         via="api", reason=SECRET_REASON)
        await app.service.sign(made.id, by=app.policy.people["bob"], via="slack", comment="checked <b>dashboards</b>")
        async for base in _serve(app):
            yield app, base


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies for 127.0.0.1


async def get(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, str, Any]:
    async with session.get(url, **kwargs) as response:
        return response.status, await response.text(), response.headers


async def sign_in_with_token(session: aiohttp.ClientSession, base: str, token: str = TOKEN) -> tuple[int, str]:
    async with session.post(f"{base}/ui/login", data={"token": token}) as response:
        return response.status, await response.text()


def is_login_page(body: str) -> bool:
    return "Sign in to signoff" in body and 'id="requests"' not in body


@pytest.mark.parametrize("path", ["/ui/", "/ui/requests/R-1", "/ui/incidents", "/ui/playbooks", "/ui/audit",
                                  "/ui/breakglass", "/ui/nothing-here"])
async def test_a_stranger_gets_the_login_page_and_no_data(served: tuple[App, str], path: str) -> None:
    _, base = served
    async with client() as session:
        status, body, headers = await get(session, base + path)
    assert status == 401
    assert is_login_page(body)
    assert "R-1" not in body and "secret reason" not in body and "rollout" not in body
    assert headers["Cache-Control"] == "no-store"


async def test_the_token_form_signs_in_and_the_requests_show(served: tuple[App, str]) -> None:
    _, base = served
    async with client() as session:
        status, body = await sign_in_with_token(session, base, "not-the-token-at-all-0000")
        assert status == 401 and "That is not the API token" in body
        status, body = await sign_in_with_token(session, base)
        assert status == 200 and 'id="requests"' in body and "R-1" in body
        cookie = next(c for c in session.cookie_jar if c.key == SESSION_COOKIE)
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/ui"
        assert not cookie["secure"]  # plain http on loopback
        status, body, _ = await get(session, f"{base}/ui/requests/R-1")
        assert status == 200 and 'id="timeline"' in body and "checked &lt;b&gt;dashboards&lt;/b&gt;" in body


async def test_the_cookie_is_secure_behind_https(served: tuple[App, str]) -> None:
    _, base = served
    async with client() as session, session.post(f"{base}/ui/login", data={"token": TOKEN},
                                                 headers={"X-Forwarded-Proto": "https"},
                                                 allow_redirects=False) as response:
        assert response.status == 303
        assert re.search(r"signoff_session=[^;]+;.*Secure", response.headers["Set-Cookie"], re.I)
        assert "HttpOnly" in response.headers["Set-Cookie"] and "SameSite=Lax" in response.headers["Set-Cookie"]


async def test_a_tampered_or_foreign_cookie_gets_the_login_page(served: tuple[App, str]) -> None:
    _, base = served
    async with client() as session:
        await sign_in_with_token(session, base)
        real = next(c for c in session.cookie_jar if c.key == SESSION_COOKIE).value
    body, signature = real.split(".")
    forged_body = seal({"who": "alice", "via": "oidc", "expires": 4102444800, "csrf": "x"}, b"k").split(".")[0]
    foreign = seal({"who": "alice", "via": "oidc", "expires": 4102444800, "csrf": "x"},
                   signing_key("another-deployment-key-0123456", "session"))
    for value in (f"{forged_body}.{signature}", f"{body}.{'0' * 64}", foreign, "garbage", real + "x"):
        async with client() as session:
            status, page, _ = await get(session, f"{base}/ui/", headers={"Cookie": f"{SESSION_COOKIE}={value}"})
        assert status == 401 and is_login_page(page), value
        assert "R-1" not in page
    async with client() as session:  # the untouched cookie still works, so the refusals above are the tampering
        status, page, _ = await get(session, f"{base}/ui/", headers={"Cookie": f"{SESSION_COOKIE}={real}"})
    assert status == 200 and "R-1" in page


async def test_bearer_works_for_scripts_and_a_wrong_one_does_not(served: tuple[App, str]) -> None:
    _, base = served
    async with client() as session:
        status, body, _ = await get(session, f"{base}/ui/requests/R-1", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and "R-1" in body and "API token (Bearer)" in body
        status, body, _ = await get(session, f"{base}/ui/", headers={"Authorization": "Bearer wrong-token-0123456789"})
        assert status == 401 and is_login_page(body) and "not SIGNOFF_API_TOKEN" in body


async def test_strict_security_headers_on_every_page(served: tuple[App, str]) -> None:
    _, base = served
    async with client() as session:
        for path, auth in (("/ui/login", {}), ("/ui/", {"Authorization": f"Bearer {TOKEN}"}),
                           ("/ui/static/signoff.css", {})):
            status, body, headers = await get(session, base + path, headers=auth)
            assert status == 200, path
            csp = headers["Content-Security-Policy"]
            assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
            assert "unsafe-inline" not in csp
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["X-Frame-Options"] == "DENY"
            assert "<script" not in body  # the pages carry no script of their own


async def test_database_text_is_escaped(served: tuple[App, str]) -> None:
    _, base = served
    async with client() as session:
        _, body, _ = await get(session, f"{base}/ui/requests/R-1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<b>dashboards</b>" not in body


async def test_oidc_signs_in_the_person_with_that_email(served: tuple[App, str], oidc: FakeOidcProvider) -> None:
    _, base = served
    oidc.email = "bob@example.com"  # the policy spells it Bob@Example.com: matched without regard to case
    async with client() as session:
        status, body, _ = await get(session, f"{base}/ui/oidc/start")
        assert status == 200, body
        assert 'id="requests"' in body and '<span id="who">bob</span>' in body
    assert oidc.issued and oidc.issued[-1]["aud"] == oidc.client_id


async def test_a_person_without_a_matching_email_is_refused_with_a_sentence(
        served: tuple[App, str], oidc: FakeOidcProvider) -> None:
    _, base = served
    oidc.email = "eve@example.com"
    async with client() as session:
        status, body, _ = await get(session, f"{base}/ui/oidc/start")
        assert status == 403 and is_login_page(body)
        assert "eve@example.com is not a person in the policy" in body
        assert "email = &#34;eve@example.com&#34;" in body and "[people.&lt;name&gt;]" in body
        assert not any(c.key == SESSION_COOKIE for c in session.cookie_jar)
        status, body, _ = await get(session, f"{base}/ui/")
        assert status == 401


async def test_an_id_token_signed_with_another_key_is_refused(
        served: tuple[App, str], oidc: FakeOidcProvider) -> None:
    _, base = served
    oidc.rogue_key = True
    async with client() as session:
        status, body, _ = await get(session, f"{base}/ui/oidc/start")
    assert status == 403 and "ID token did not check out" in body


async def test_a_callback_that_did_not_start_here_is_refused(served: tuple[App, str]) -> None:
    _, base = served
    async with client() as session:
        status, body, _ = await get(session, f"{base}/ui/oidc/callback?code=abc&state=forged")
    assert status == 403 and "did not start here" in body


async def test_the_audit_page_runs_verify_with_the_sessions_form_token(served: tuple[App, str]) -> None:
    app, base = served
    async with client() as session:
        await sign_in_with_token(session, base)
        _, page, _ = await get(session, f"{base}/ui/audit")
        head = await app.history.head()
        assert head is not None and head[1] in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        async with session.post(f"{base}/ui/audit/verify", data={"csrf": "forged"}) as response:
            assert response.status == 403
        async with session.post(f"{base}/ui/audit/verify", data={"csrf": csrf.group(1)}) as response:
            body = await response.text()
    assert response.status == 200
    assert f"timeline intact: {head[0]} events, hash chain verified" in body
    assert "requests intact: 1 request(s)" in body


async def test_the_request_page_names_an_altered_event(served: tuple[App, str]) -> None:
    app, base = served
    await app.db.write(lambda uow: uow.connection.exec_driver_sql(
        "UPDATE timeline SET title = 'nothing happened' WHERE seq = 1"))
    async with client() as session:
        _, body, _ = await get(session, f"{base}/ui/requests/R-1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "does not match its timeline" in body


async def test_filters_pages_and_refusals_on_the_requests_page(served: tuple[App, str]) -> None:
    app, base = served
    second = await app.service.request("scale deployment/web --replicas=3 -n staging", by=app.policy.people["bob"],
                                       via="api")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with client() as session:
        _, first_page, _ = await get(session, f"{base}/ui/?limit=1", headers=auth)
        assert f">{second.id}<" in first_page and ">R-1<" not in first_page
        older = re.search(r'id="older" href="([^"]+)"', first_page)
        assert older is not None
        _, next_page, _ = await get(session, f"{base}/ui/{older.group(1).replace('&amp;', '&')}", headers=auth)
        assert ">R-1<" in next_page and f">{second.id}<" not in next_page
        _, mine, _ = await get(session, f"{base}/ui/?requester=bob&status=pending", headers=auth)
        assert f">{second.id}<" in mine and ">R-1<" not in mine
        status, bad, _ = await get(session, f"{base}/ui/?status=sleeping", headers=auth)
        assert status == 400 and "`status` must be one or more of pending" in bad
        status, bad, _ = await get(session, f"{base}/ui/?cursor=bm9wZQ", headers=auth)
        assert status == 400 and "`cursor` is not one this list gave out" in bad
        status, missing, _ = await get(session, f"{base}/ui/requests/R-999", headers=auth)
        assert status == 404 and "There is no request R-999" in missing
        status, missing, _ = await get(session, f"{base}/ui/requests/nonsense", headers=auth)
        assert status == 404


async def test_sign_out_ends_the_session(served: tuple[App, str]) -> None:
    _, base = served
    async with client() as session:
        _, page = await sign_in_with_token(session, base)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        async with session.post(f"{base}/ui/logout", data={"csrf": csrf.group(1)}) as response:
            assert response.status == 200 and is_login_page(await response.text())
        status, body, _ = await get(session, f"{base}/ui/")
        assert status == 401 and is_login_page(body)


async def test_the_login_page_says_which_settings_turn_sign_in_on(sqlite_database_url: str) -> None:
    async with running_app(make_settings(sqlite_database_url), policy=POLICY) as app:
        async for base in _serve(app):
            async with client() as session:
                status, body, _ = await get(session, f"{base}/ui/")
                assert status == 401 and "no way to sign in yet" in body and "SIGNOFF_OIDC_ISSUER" in body
                assert 'id="token"' not in body and 'id="oidc"' not in body
                status, body, _ = await get(session, f"{base}/ui/", headers={"Authorization": "Bearer anything-at-all"})
                assert status == 401 and "R-" not in body
    async with running_app(make_settings(sqlite_database_url, SIGNOFF_API_TOKEN=TOKEN), policy=POLICY) as app:
        async for base in _serve(app):
            async with client() as session:
                _, body, _ = await get(session, f"{base}/ui/login")
                assert 'id="token"' in body and 'id="oidc"' not in body
                status, body, _ = await get(session, f"{base}/ui/oidc/start")
                assert status == 404 and "OIDC sign-in is not configured" in body


async def test_an_unreachable_provider_is_a_sentence_on_the_login_page(
        served: tuple[App, str], oidc: FakeOidcProvider) -> None:
    _, base = served
    await oidc.stop()
    async with client() as session:
        status, body, _ = await get(session, f"{base}/ui/oidc/start")
    assert status == 502 and is_login_page(body) and "cannot be reached right now" in body


async def test_the_request_and_audit_pages_on_each_database(database_url: str) -> None:
    async with running_app(make_settings(database_url, SIGNOFF_API_TOKEN=TOKEN), policy=POLICY) as app:
        made = await app.service.request("rollout restart deployment/api -n prod", by=app.policy.people["alice"],
                                         via="api")
        await app.service.sign(made.id, by=app.policy.people["bob"], via="slack", comment="fine by me")
        events = await app.service.timeline(made.id)
        async for base in _serve(app):
            async with client() as session:
                await sign_in_with_token(session, base)
                _, page, _ = await get(session, f"{base}/ui/requests/{made.id}")
                assert all(event.hash in page for event in events) and "fine by me" in page
                assert "Every event's hash matches its content" in page
                _, audit, _ = await get(session, f"{base}/ui/audit")
                csrf = re.search(r'name="csrf" value="([^"]+)"', audit)
                assert csrf is not None and events[-1].hash in audit
                async with session.post(f"{base}/ui/audit/verify", data={"csrf": csrf.group(1)}) as response:
                    assert f"timeline intact: {events[-1].seq} events" in await response.text()


async def test_a_person_taken_off_the_policy_loses_the_session(served: tuple[App, str]) -> None:
    app, base = served
    async with client() as session:
        status, body, _ = await get(session, f"{base}/ui/oidc/start")
        assert status == 200 and '<span id="who">alice</span>' in body
        app.policy = parse_policy(POLICY.replace('email = "alice@example.com"', "").replace("[people.alice]",
                                                                                          "[people.alicia]"), "p")
        status, body, _ = await get(session, f"{base}/ui/")
        assert status == 401 and is_login_page(body)
