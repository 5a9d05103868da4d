"""The hazard ledger in the browser: an orange alert lists a hazard, an officer files an inspection
hazard and its five-essentials plan, attaches evidence and submits it; the sector verifies (销账)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.console.conftest import Console, shot, sign_in

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d4944415478da63f8cfc0f01f0005000201a0e8a5f30000000049454e44ae426082")


def test_file_hazard_plan_evidence_submit_verify(page: Page, console: Console) -> None:
    sign_in(page, console.url, "otto", "/hazards?lang=en")
    form = page.locator("#hazard-new")
    form.get_by_label("Site").select_option("GS-N3")
    form.get_by_label("Title").fill("Cracked nozzle guard")
    form.get_by_label("Description").fill("Found on the weekly round")
    form.get_by_role("button", name="File hazard").click()
    expect(page).to_have_url(re.compile(r"/hazards/[^/?]+$"))
    expect(page.locator("#hazard-state")).to_contain_text("listed")
    expect(page.locator("#hazard-timeline")).to_contain_text("listed")
    plan = page.locator("#plan-form")
    plan.get_by_label("Measures").fill("Replace the guard, re-train the attendants")
    plan.get_by_label("Owner").fill("Station manager Li")
    plan.get_by_label("Funds").fill("2000 yuan")
    plan.get_by_label("Contingency").fill("Close pump 3 until done")
    plan.get_by_role("button", name="File plan").click()
    expect(page.locator("#hazard-state")).to_contain_text("rectifying")
    expect(page.get_by_text("Station manager Li")).to_be_visible()
    page.get_by_label("Progress note").fill("Guard ordered")
    expect(page.get_by_label("Progress note")).to_have_value("Guard ordered")  # a lost fill shows here
    page.get_by_role("button", name="Add progress").click()
    expect(page.locator("#hazard-timeline")).to_contain_text("Guard ordered")
    page.get_by_label(re.compile("^Attachment")).set_input_files(
        {"name": "guard.png", "mimeType": "image/png", "buffer": PNG})
    page.get_by_role("button", name="Upload").click()
    link = page.locator("#hazard-timeline a[href*='/attachments/']")
    expect(link).to_have_count(1)
    expect(link).to_have_text("guard.png")
    served = page.request.get(console.url + (link.get_attribute("href") or ""))  # the signed-in cookie
    assert served.ok and served.body() == PNG
    shot(page, "hazard-detail")
    page.get_by_label("Completion note").fill("Guard replaced")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator("#hazard-state")).to_contain_text("review")
    page.get_by_label("Review note").fill("Checked on site")
    page.get_by_role("button", name="Verify and close").click()
    expect(page.locator("#hazard-state")).to_contain_text("closed")


def test_orange_alert_lists_a_hazard_on_the_ledger(page: Page, console: Console) -> None:
    console.devices.send("gas_station", "GS-S1", "d9", {"vapor_lel": 30.0})
    sign_in(page, console.url, "otto", "/hazards?lang=en")
    row = page.locator("#hazard-ledger tbody tr").filter(has_text="GS-S1")
    expect(row.first).to_contain_text("listed", timeout=20_000)
    expect(row.first).to_contain_text("left")  # time left before the deadline
    shot(page, "hazards")


def test_listed_alert_points_to_its_hazard_and_is_closed_by_it(page: Page, console: Console) -> None:
    console.devices.send("gas_station", "GS-S1", "d8", {"vapor_lel": 33.0})  # orange: listed as a hazard
    sign_in(page, console.url, "otto", "/hazards?lang=en&site=GS-S1")
    page.locator("#hazard-ledger tbody tr").filter(has_text="GS-S1").first.get_by_role("link").nth(2).click()
    expect(page.locator("#hazard-state")).to_contain_text("listed")
    page.locator("main dd a[href^='/alerts/']").first.click()
    expect(page.get_by_role("link", name=re.compile(r"^Hazard #"))).to_be_visible()
    expect(page.get_by_role("button", name="Close")).to_be_disabled()
    expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
