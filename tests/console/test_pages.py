"""Every other page of the console renders from the real API, in both languages, keyboard-reachable."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import Console, shot, sign_in

# (user, path, something the page must show in English, a table row its data fills in, screenshot name)
PAGES = [
    ("otto", "/map", "Streets × sectors", "#matrix tbody tr", "map"),
    ("otto", "/sites", "GS-N3", "main tbody tr", "sites"),
    ("otto", "/reports", "Download CSV", "#report-table tbody tr", "reports"),
    ("otto", "/credit", "Warning list", "#credit-table tbody tr a[href^='/credit/']", "credit"),
    ("otto", "/credit/GS-N1", "Grade", "#credit tbody tr", "credit-site"),
    ("otto", "/subscriptions", "Add a subscription", "#subscriptions tbody tr", "subscriptions"),
    ("otto", "/silences", "Add a silence", "#silences tbody tr", "silences"),
    ("ada", "/users", "sita", "#users tbody tr", "users"),
    ("ada", "/audit", "session", "#audit tbody tr", "audit"),
]


@pytest.mark.parametrize(("user", "path", "shows", "rows", "name"), PAGES, ids=[p[4] for p in PAGES])
def test_page_renders(page: Page, console: Console, user: str, path: str, shows: str, rows: str,
                      name: str) -> None:
    sign_in(page, console.url, user, f"{path}?lang=en")
    expect(page.locator("main")).to_contain_text(shows)
    expect(page.locator("main h1")).not_to_be_empty()
    expect(page.locator(rows).first).to_be_visible()  # the data is in, not only the page's frame
    shot(page, name)


def test_situation_board_places_every_site(page: Page, console: Console) -> None:
    console.devices.send("gas_station", "GS-N3", "d1", {"vapor_lel": 55.0})  # red, at the site without location
    sign_in(page, console.url, "ada", "/map?lang=en")
    site = page.locator("svg a[aria-label^='GS-N3']")
    expect(site).to_have_attribute("aria-label", re.compile("red"), timeout=20_000)
    expect(page.locator("svg a")).to_have_count(5)
    expect(page.locator("svg g.street text")).to_have_text(["北街道", "南街道"])
    north_fuel = page.locator("#matrix tbody tr").filter(has_text="北街道").locator("td").first
    expect(north_fuel).to_have_class(re.compile("bg-red"))
    expect(north_fuel).to_contain_text("red")
    shot(page, "map", full_page=True)


def test_language_switch_and_sign_out(page: Page, console: Console) -> None:
    page.goto(console.url + "/alerts")  # no ?lang: the browser says en-GB
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(console.url + "/alerts?lang=zh")
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    page.get_by_label("用户名").fill("otto")
    page.get_by_label("密码").fill("correct-horse-battery")
    page.keyboard.press("Enter")  # the form works from the keyboard
    expect(page.get_by_role("link", name="告警")).to_be_visible()
    expect(page.locator("main h1")).to_contain_text("告警看板")
    expect(page.locator("#alert-count")).not_to_be_empty()  # the board's alerts are loaded
    expect(page.locator("#alert-board tbody tr").first).to_be_visible()
    shot(page, "alerts-zh")
    page.goto(console.url + "/alerts")  # remembered
    expect(page.locator("main h1")).to_contain_text("告警看板")
    page.get_by_label("语言").select_option("en")
    expect(page.locator("main h1")).to_contain_text("Alert board")
    expect(page.locator("#alert-count")).not_to_be_empty()  # loaded: no request of the board outlives the session
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(console.url + "/alerts")
    expect(page.get_by_label("Username")).to_be_visible()  # the session is gone


def test_times_in_the_district_zone(page: Page, console: Console) -> None:
    sign_in(page, console.url, "otto", "/sites/GS-N1?lang=en")
    zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    shown = page.evaluate("import('/console/js/i18n.js').then(m => m.timeZone())")
    assert shown == "Asia/Urumqi" != zone


def test_site_user_sees_only_its_sites_and_self_reports(page: Page, console: Console) -> None:
    sign_in(page, console.url, "sita", "/sites?lang=en")
    expect(page.locator("main tbody tr")).to_have_count(1)
    expect(page.locator("main tbody")).to_contain_text("GS-N1")
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    page.get_by_role("link", name="Hazards").click()
    expect(page.locator("#hazard-new").get_by_label("Source")).to_have_value("self_report")


def test_viewer_reads_but_has_no_buttons(page: Page, console: Console) -> None:
    console.devices.send("gas_station", "GS-N1", "d7", {"vapor_lel": 12.0})  # blue
    sign_in(page, console.url, "vera", "/alerts?lang=en")
    row = page.get_by_role("row").filter(has_text="GS-N1").filter(has_text="blue")
    expect(row.first).to_be_visible(timeout=20_000)
    expect(page.get_by_role("button", name="Acknowledge selected")).to_have_count(0)
    row.first.get_by_role("link", name="vapour-level").click()
    expect(page.locator("#alert-state")).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)


def test_report_downloads_csv(page: Page, console: Console) -> None:
    sign_in(page, console.url, "otto", "/reports?lang=en")
    expect(page.locator("#report-table")).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    header = info.value.path().read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.split(",")[:3] == ["group", "listed", "closed"]


def test_add_and_delete_a_silence(page: Page, console: Console) -> None:
    sign_in(page, console.url, "otto", "/silences?lang=en")
    form = page.locator("#sil-new")
    form.get_by_label("Site").select_option("GS-S1")
    form.get_by_label("Reason").fill("pump maintenance")
    form.get_by_role("button", name="Add").click()
    row = page.locator("#silences tbody tr").filter(has_text="pump maintenance")
    expect(row).to_have_count(1)
    row.get_by_role("button", name="Delete the silence of GS-S1").click()
    expect(row).to_have_count(0)


# (user, path, a table row its data fills in, screenshot name): the default language's pages a
# duty officer reads most, with their data in
ZH_PAGES = [
    ("otto", "/sites/GS-S1", "#credit tbody tr", "site-zh"),
    ("otto", "/hazards", "#hazard-ledger tbody tr", "hazards-zh"),
    ("ada", "/map", "#matrix tbody tr", "map-zh"),
]


@pytest.mark.parametrize(("user", "path", "rows", "name"), ZH_PAGES, ids=[p[3] for p in ZH_PAGES])
def test_page_in_chinese(page: Page, console: Console, user: str, path: str, rows: str, name: str) -> None:
    sign_in(page, console.url, user, f"{path}?lang=en")
    page.get_by_label("Language").select_option("zh")
    expect(page.get_by_role("button", name="退出")).to_be_visible()
    expect(page.locator(rows).first).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("加载中")  # the charts are drawn
    shot(page, name, full_page=True)
