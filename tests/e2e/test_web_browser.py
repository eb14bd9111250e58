"""The web view in a real browser: Debian's chromium driven by selenium through chromedriver, headless.

Sign in with the API token through /ui/login, open a request and see its timeline; then sign in again through
OIDC against the loopback fake provider. Nothing is downloaded: selenium gets the driver's and the browser's
paths (and SE_OFFLINE). Locally without the binaries the test skips and says why; with
SIGNOFF_REQUIRE_BROWSER=1 (CI) it fails instead. With SIGNOFF_UI_SCREENSHOTS=docs/img it writes the pages'
screenshots there (docs/web.md shows them); otherwise into a temporary folder.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from adapters.console.repl import run_script
from bot.bootstrap import App
from bot.chats.console import attach_console
from bot.http import build_http_app
from core.domain.approvals import RequestStatus
from testkit.fakes.oidc import FakeOidcProvider
from testkit.support import make_settings, running_app

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "browser-test-token-0123456789"
PEOPLE = ["alice", "bob", "carol", "dave", "erin"]
POLICY = "\n".join(f'[people.{name}]\nslack = "U0{name.upper()}"\ngroups = ["sre"]\nemail = "{name}@example.com"\n'
                   for name in PEOPLE)
CRASH = "Pod prod/{0} (api) is in waiting state (reason: CrashLoopBackOff)."
SCRIPT = """\
as alice
request rollout restart deployment/api -n prod risk=high reason="p99 latency above 2s since 10:02"
as bob
approve R-1 comment="checked the dashboards: only the api pods are slow"
as carol
approve R-1
request scale deployment/web --replicas=4 -n staging reason="load test at 14:00"
alert KubePodCrashLooping namespace=prod pod={pod} container=api severity=warning description="{crash}"
as bob
approve R-3
rate INC-1 4
as erin
react PB-1 ✅
alert KubePodCrashLooping namespace=prod pod={pod_b} container=api severity=critical description="{crash_b}"
as carol
approve R-4
as dave
request cordon node-2 reason="disk pressure"
"""


def _browser_or_skip() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if not missing:
        return
    message = (f"no real browser here: {', '.join(missing)} missing (`apt-get install chromium chromium-driver`; "
               ".ci/run installs them)")
    if os.environ.get("SIGNOFF_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "; SIGNOFF_REQUIRE_BROWSER=1 says this test must run here")
    pytest.skip(message)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    _browser_or_skip()
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium never fetches a driver or a browser
    monkeypatch.setenv("SE_AVOID_STATS", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--disable-gpu", "--no-first-run", "--disable-extensions", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    # A click that submits a form returns before the next page has loaded: every look-up waits for its element
    # (seen failing under load: the audit page's verify result looked for on the page before it).
    driver.implicitly_wait(30)
    try:
        yield driver
    finally:
        driver.quit()


async def _seed(app: App) -> None:
    """A little history through the console, as people would make it: requests, signatures with a comment, an
    execution and its verification, an alert, an incident rated, a playbook approved."""
    console = attach_console(app, io.StringIO())
    app.sandbox.set_ready_delay(0.0)
    pods = sorted(p["metadata"]["name"] for p in app.sandbox.objects("pod", "prod", "app=api"))
    script = SCRIPT.format(pod=pods[0], crash=CRASH.format(pods[0]), pod_b=pods[-1], crash_b=CRASH.format(pods[-1]))
    for line in script.splitlines():
        await run_script(console, [line], app.settle, io.StringIO())
        for _ in range(200):  # verification looks again after a delay of its own
            verifying = await app.db.read(lambda uow: uow.requests.with_status([RequestStatus.verifying], limit=1))
            if not verifying:
                break
            await asyncio.sleep(app.verification.wait_s(0.05))
            await app.settle()


@pytest.fixture
async def site(sqlite_database_url: str) -> AsyncIterator[tuple[App, str, FakeOidcProvider]]:
    provider = FakeOidcProvider()
    await provider.start()
    settings = make_settings(sqlite_database_url, SIGNOFF_API_TOKEN=TOKEN, SIGNOFF_OIDC_ISSUER=provider.issuer,
                             SIGNOFF_OIDC_CLIENT_ID=provider.client_id,
                             SIGNOFF_OIDC_CLIENT_SECRET=provider.client_secret)
    try:
        async with running_app(settings, policy=POLICY) as app:
            await _seed(app)
            server = TestServer(build_http_app(app), host="127.0.0.1")
            await server.start_server()
            try:
                yield app, str(server.make_url("")).rstrip("/"), provider
            finally:
                await server.close()
    finally:
        await provider.stop()


def _shots() -> Path | None:
    folder = os.environ.get("SIGNOFF_UI_SCREENSHOTS")
    return ROOT / folder if folder else None  # relative to the repository (tests run in a temporary folder)


async def test_sign_in_open_a_request_and_see_its_timeline(
        site: tuple[App, str, FakeOidcProvider], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    app, base, provider = site
    shots = _shots() or tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    events = await app.service.timeline("R-1")
    assert events and await app.service.get("R-1")

    def shoot(name: str) -> None:
        browser.set_window_size(1280, 900)
        height = browser.execute_script("return document.documentElement.scrollHeight")  # via DevTools, not CSP
        browser.set_window_size(1280, min(int(height) + 20, 2400))
        browser.save_screenshot(str(shots / f"ui-{name}.png"))

    def with_the_token() -> dict[str, str]:
        seen: dict[str, str] = {}
        browser.get(f"{base}/ui/requests/R-1")  # a stranger: the login page, no data
        assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in to signoff"
        assert "R-1" not in browser.page_source
        shoot("login")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "signin").click()
        table = browser.find_element(By.ID, "requests")
        seen["requests"] = table.text
        shoot("requests")
        table.find_element(By.LINK_TEXT, "R-1").click()
        timeline = browser.find_element(By.ID, "timeline")
        seen["timeline"] = timeline.text
        seen["signatures"] = browser.find_element(By.ID, "signatures").text
        seen["verification"] = browser.find_element(By.ID, "verification").text
        shoot("request")
        for page in ("incidents", "playbooks", "breakglass"):
            browser.get(f"{base}/ui/{page}")
            seen[page] = browser.find_element(By.TAG_NAME, "main").text
            shoot(page)
        browser.get(f"{base}/ui/audit")
        browser.find_element(By.ID, "verify").click()
        seen["audit"] = browser.find_element(By.ID, "result").text
        shoot("audit")
        return seen

    seen = await asyncio.to_thread(with_the_token)
    assert "R-1" in seen["requests"] and "R-5" in seen["requests"]
    for event in events:
        assert event.hash in seen["timeline"] and event.title in seen["timeline"]
    assert "checked the dashboards" in seen["signatures"]
    assert "Every event's hash matches its content" in seen["verification"]
    assert "INC-1" in seen["incidents"] and "PB-1" in seen["playbooks"]
    assert "timeline intact" in seen["audit"] and "requests intact" in seen["audit"]

    def with_oidc() -> tuple[str, str]:
        browser.delete_all_cookies()
        browser.get(f"{base}/ui/")
        browser.find_element(By.ID, "oidc").click()  # to the provider and back
        who = browser.find_element(By.ID, "who").text
        browser.get(f"{base}/ui/requests/R-1")
        return who, browser.find_element(By.ID, "timeline").text

    who, timeline = await asyncio.to_thread(with_oidc)
    assert who == "alice"  # the fake provider's user, alice@example.com, is [people.alice]
    assert events[0].hash in timeline
    assert provider.issued[-1]["email"] == "alice@example.com"

