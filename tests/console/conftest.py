"""A real ``safewatch serve`` (own Mosquitto and InfluxDB from the ``stack`` fixture) and Debian's
Chromium driven by Playwright, for the console tests.

Every page a test opens is watched: a request to any other host than serve, or a console error,
fails the test at its end. Screenshots go to ``docs/console/`` (the README shows them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright

from service.stack import StackInfo
from tests.support.console_district import PASSWORD, USERS, config
from tests.support.e2e.clients import Devices
from tests.support.e2e.district import new_name, write_config
from tests.support.e2e.serve_process import ADMIN_TOKEN, ServeProcess

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
# The machine running the suite is shared and busy: a page may take seconds to answer, never minutes.
expect.set_options(timeout=15_000)


@dataclass
class Console:
    name: str
    serve: ServeProcess
    devices: Devices

    @property
    def url(self) -> str:
        return self.serve.base_url

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)


@pytest.fixture(scope="package")
def console(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make deps` installs Debian's chromium")
    name = new_name()
    workdir = tmp_path_factory.mktemp(f"console_{name}")
    serve = ServeProcess(stack, write_config(workdir / "district.yaml", config(name)), workdir)
    serve.start()
    devices: Devices | None = None
    try:
        with httpx.Client(base_url=serve.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as api:
            for user, (role, dept, sites) in USERS.items():
                r = api.post("/api/v1/users", json={"username": user, "role": role, "department": dept,
                                                    "sites": sites, "password": PASSWORD})
                assert r.status_code == 201, r.text
        devices = Devices(stack, name)
        yield Console(name, serve, devices)
    finally:
        if devices is not None:
            devices.close()
        serve.stop()


# Package scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@dataclass
class Watch:
    """What a page did that it must not: other hosts asked, errors logged."""

    host: str
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def request(self, req: Request) -> None:
        url = req.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return
        if parts.netloc != self.host:
            self.foreign.append(url)

    def console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"{msg.text} ({msg.location.get('url', '')})")

    def page_error(self, err: Exception) -> None:
        self.errors.append(f"uncaught: {err}")


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh browser context (no cookie, no localStorage) in English unless a test switches."""
    ctx = browser.new_context(locale="en-GB", viewport={"width": 1360, "height": 900})
    page = ctx.new_page()
    watch = Watch(urlsplit(console.url).netloc)
    page.on("request", watch.request)
    page.on("console", watch.console)
    page.on("pageerror", watch.page_error)
    page.set_default_timeout(15_000)
    yield page
    ctx.close()
    assert not watch.foreign, f"the console asked other hosts: {watch.foreign}"
    assert not watch.errors, f"the console logged errors: {watch.errors}"


def shot(page: Page, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.activeElement?.blur(); document.getElementById('toast').replaceChildren(); scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page: Page, base: str, user: str, path: str = "/alerts?lang=en") -> None:
    page.goto(base + path)
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
