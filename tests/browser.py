"""A real browser for the portal's tests: Debian's Chromium driven by Playwright for Python.

Playwright's own browser download cannot be reached here, so Chromium is the system's
(`scripts/test` installs it with fonts-noto-cjk, so Chinese renders). Without it the browser tests
skip, except under CI=true, where that is a failure. ``axe(page)`` runs axe-core (tests/vendor) in
the page and returns the violations of the given impacts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("COMPUTENET_SCREENSHOTS", "/tmp/computenet-screenshots"))
# as the machine notes advise: no background traffic (the network is closed), no sandbox as root
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium():
    """A Playwright Browser on Debian's Chromium, for the whole run."""
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Chromium or Playwright is missing (scripts/test installs them)")
        pytest.skip("no Chromium/Playwright here")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=FLAGS)
        yield browser
        browser.close()


def new_page(chromium, base_url: str, locale: str = "en-US", phone: bool = False):
    """A fresh context (no cookies) and a page in it; a phone-sized viewport when asked."""
    options = {"base_url": base_url, "locale": locale}
    if phone:
        options |= {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
                    "has_touch": True}
    else:
        options |= {"viewport": {"width": 1280, "height": 900}}
    context = chromium.new_context(**options)
    # generous: CI runs two passes side by side, each with its own browser and in-process server
    context.set_default_timeout(30_000)
    return context.new_page()


def sign_in(page, login: str, password: str) -> None:
    page.goto("/login")
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("button[type=submit].primary")
    page.wait_for_url(lambda url: "/login" not in url)


def axe(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations on the page as it is now, of these impacts."""
    # evaluated over the DevTools protocol: the page's CSP (no inline scripts) rightly refuses a script tag
    page.evaluate("source => { (0, eval)(source); }", AXE.read_text())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in impacts]


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def users_who_sign_in(platform, names, password: str, balance: str = "500.00") -> None:
    """Users with a funded account and a password, for a test that signs in through the portal."""
    from computenet.services.tenancy import accounts
    from computenet.services import audit
    from computenet.services.signin import passwords

    from conftest import add_user

    for name in names:
        add_user(platform, name, balance=balance)
        with platform.db.session() as session:
            passwords.set_password(session, audit.SYSTEM, accounts.get_user(session, name), password,
                                   platform.settings.auth)


def start_session(page, app: str, wait_ms: int = 60_000, before_start=None):
    """Start an interactive app from the sessions page (1 core, 1 hour) and wait for its Connect link:
    the page reloads itself while the session starts, and shows Connect once the server answers."""
    page.goto("/portal/sessions")
    if before_start is not None:
        before_start(page)
    page.select_option("#s-app", app)
    page.fill("#s-cores", "1")
    page.fill("#s-hours", "1")
    page.click("form.session-start button[type=submit]")
    page.wait_for_url("**/portal/sessions?done=started")
    connect = page.locator("a.button:has-text('Connect')")
    connect.wait_for(timeout=wait_ms)
    return connect
