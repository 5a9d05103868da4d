"""A duty officer's incident, in a real browser against a real serve: sign in, an alert published
over MQTT appears on the board without a reload, acknowledge and close it from its page, read the
site's chart, file a hazard and its plan, switch language, sign out."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.console.conftest import Console, shot, sign_in


def test_alert_appears_live_then_ack_and_close(page: Page, console: Console) -> None:
    sign_in(page, console.url, "otto")
    board = page.locator("#alert-board")
    expect(board).to_be_visible()
    expect(page.locator("#alert-count")).not_to_be_empty()  # the board's alerts are loaded
    shot(page, "signin-board-empty")
    # yellow (20 <= 22 < 25): below the supervision listing level, so the alert can be closed by itself
    console.devices.send("gas_station", "GS-N2", "d1", {"vapor_lel": 22.0})
    row = page.get_by_role("row").filter(has_text="GS-N2")
    expect(row).to_contain_text("vapour-level", timeout=20_000)
    expect(row).to_contain_text("yellow")
    expect(row).to_contain_text("加油站 GS-N2")
    shot(page, "alerts")
    row.get_by_role("link", name="vapour-level").click()
    expect(page).to_have_url(re.compile(r"/alerts/[^/]+$"))
    page.get_by_label("Note").fill("crew on the way")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#alert-state")).to_have_text("acknowledged")
    expect(page.locator("#alert-timeline").locator("..")).to_contain_text("crew on the way")
    expect(page.locator("#chart-box svg")).to_have_attribute("aria-label", re.compile("vapor_lel"))
    shot(page, "alert-detail")
    page.get_by_label("Note").fill("valve replaced, verified")
    page.get_by_role("button", name="Close").click()
    expect(page.locator("#alert-state")).to_have_text("closed")
    expect(page.get_by_role("button", name="Acknowledge")).to_be_disabled()


def test_site_page_charts(page: Page, console: Console) -> None:
    for v in (3.0, 4.0, 5.5):
        console.devices.send("gas_station", "GS-S1", "d1", {"vapor_lel": v, "tank_pressure_kpa": 12.0})
    sign_in(page, console.url, "otto", "/sites/GS-S1?lang=en")
    chart = page.locator("figure[aria-label*='vapor_lel']")
    expect(chart.locator("svg path.line")).to_have_count(1, timeout=20_000)
    expect(chart.locator("svg")).to_have_attribute("aria-label", re.compile(r"vapor_lel.*[1-9]\d* points"))
    expect(chart.locator("rect.band")).to_have_count(4)  # blue, yellow, orange, red levels of vapour-level
    expect(page.get_by_role("cell", name=re.compile("vapour"))).not_to_have_count(0)
    shot(page, "site")
    page.get_by_role("button", name="24 h").click()
    expect(page.get_by_role("button", name="24 h")).to_have_attribute("aria-pressed", "true")
    expect(chart.locator("svg path.line")).to_have_count(1)


def test_bulk_acknowledge(page: Page, console: Console) -> None:
    for device in ("bulk1", "bulk2"):
        console.devices.send("gas_station", "GS-N2", device, {"vapor_lel": 21.0})
    sign_in(page, console.url, "otto", "/alerts?lang=en&site=GS-N2&state=open")
    rows = page.locator("#alert-board tbody tr")
    expect(rows).to_have_count(2, timeout=20_000)
    page.get_by_label("Select all open alerts").check()
    page.get_by_role("button", name="Acknowledge selected").click()
    page.get_by_label("State").first.select_option("acknowledged")
    expect(rows.filter(has_text="acknowledged")).to_have_count(2)
