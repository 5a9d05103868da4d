"""Hazards through the HTTP API on SQLite and PostgreSQL: the move table (state × action × role),
the issue's bad-input list, alerts that cannot be closed around their hazard, and reports in JSON,
CSV and XLSX (read back with openpyxl)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest

from domain.severity import Severity
from store.state import StateStore
from tests.support.hazards import PNG, HazardApi
from tests.support.supervision import Parts

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.fixture
def api(state_url: str) -> Iterator[HazardApi]:
    store = StateStore(state_url)
    a = HazardApi(store)
    yield a
    a.alerts.stop()
    store.close()


STATES = ("listed", "rectifying", "review", "closed")
WRITERS = ("admin", "sector", "street", "site")  # may plan, progress, attach, submit (S1's hazard)
OK_FROM = {"plan": ("listed", "rectifying"), "progress": ("listed", "rectifying", "review"),
           "attach": ("listed", "rectifying", "review"), "submit": ("rectifying",),
           "accept": ("review",), "reject": ("review",)}
CODE = {"plan": 200, "progress": 200, "attach": 201, "submit": 200, "accept": 200, "reject": 200}


def expected(state: str, action: str, role: str) -> int:
    verifier = action in ("accept", "reject")
    allowed = ("admin", "sector") if verifier else WRITERS
    if role not in allowed:
        return 403
    return CODE[action] if state in OK_FROM[action] else 409


def test_move_table_state_action_role(api: HazardApi) -> None:
    wrong = []
    for state in STATES:
        for action in OK_FROM:
            for role in ("admin", "sector", "street", "viewer", "site", "other_site", "police"):
                hid = api.hazard_in(state)
                r = api.act(role, hid, action)
                want = 404 if role in ("other_site", "police") else expected(state, action, role)
                if role in ("other_site", "police") and r.status_code == 403:
                    want = 403  # a write on a hazard not routed to the caller: 403, like alerts
                if r.status_code != want:
                    wrong.append((state, action, role, r.status_code, want, r.json().get("detail")))
    assert wrong == []


def test_filing_listing_scoping_and_the_record(api: HazardApi) -> None:
    r = api.post("site", "/hazards", json={"site": "S1", "title": "加油机漏油", "description": "3号枪"})
    assert r.status_code == 201 and r.json()["source"] == "self_report"
    assert api.post("site", "/hazards", json={"site": "S2", "title": "x"}).status_code == 403
    assert api.post("site", "/hazards", json={"site": "S1", "title": "x", "source": "inspection"}).status_code == 403
    assert api.post("viewer", "/hazards", json={"site": "S1", "title": "x"}).status_code == 403
    # no routing names police, so it sees neither site: filing there answers 404, as reading it
    assert api.get("police", "/sites/S2").status_code == 404
    assert api.post("police", "/hazards", json={"site": "S2", "title": "治安隐患"}).status_code == 404
    r2 = api.post("bureau", "/hazards", json={"site": "S2", "title": "治安隐患"})  # sees every site (orange)
    assert r2.status_code == 201 and r2.json()["source"] == "inspection" and "bureau" in r2.json()["departments"]
    assert [h["site"] for h in api.get("site", "/hazards").json()] == ["S1"]
    assert [h["site"] for h in api.get("bureau", "/hazards").json()] == ["S2"]
    assert api.get("police", "/hazards").json() == []
    assert api.get("other_site", f"/hazards/{r.json()['id']}").status_code == 404
    assert len(api.get("admin", "/hazards", params={"source": "inspection"}).json()) == 1
    page = api.get("admin", "/hazards", params={"limit": 1}).json()
    older = api.get("admin", "/hazards", params={"before": page[0]["id"]}).json()
    assert [h["id"] for h in older] == [r.json()["id"]]
    hid = r.json()["id"]
    assert api.act("site", hid, "plan").status_code == 200
    got = api.get("viewer", f"/hazards/{hid}").json()
    assert got["state"] == "rectifying" and got["plan"]["owner"] == "王五"
    assert [(e["type"], e["by"]) for e in got["events"]] == [("listed", "siteuser"), ("planned", "siteuser")]
    actions = {(a["action"], a["target"]) for a in api.get("admin", "/audit").json()}
    assert ("hazard.plan", f"hazard:{hid}") in actions


@pytest.mark.parametrize("case", ["missing_owner", "empty_funds", "late_deadline", "street_verifies",
                                  "close_with_open_alert", "text_jpg", "eleven_mb", "report_backwards",
                                  "verify_without_note", "alert_close_on_hazard"])
def test_bad_input(api: HazardApi, case: str) -> None:
    if case in ("close_with_open_alert", "alert_close_on_hazard"):
        p = Parts.__new__(Parts)
        p.alerts, p.district = api.alerts, api.district
        Parts.signal(p, "S1", Severity.ORANGE)
        (h,) = api.get("admin", "/hazards").json()
        if case == "alert_close_on_hazard":
            r = api.post("sector", f"/alerts/{h['alert_ids'][0]}/close", json={"note": "x"})
            assert r.status_code == 409 and "hazard" in r.json()["detail"]
            return
        for step in ("plan", "submit"):
            assert api.act("admin", h["id"], step).status_code == 200
        r = api.act("sector", h["id"], "accept")
        assert r.status_code == 409 and "still open" in r.json()["detail"]
        return
    hid = api.hazard_in("review" if case in ("street_verifies", "verify_without_note") else "listed")
    if case == "missing_owner":
        body = api.plan_body(hid)
        del body["owner"]
        r, code = api.post("site", f"/hazards/{hid}/plan", json=body), 422
    elif case == "empty_funds":
        r, code = api.post("site", f"/hazards/{hid}/plan", json=api.plan_body(hid, funds="")), 422
    elif case == "late_deadline":
        late = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        r, code = api.post("sector", f"/hazards/{hid}/plan", json=api.plan_body(hid, deadline=late)), 422
        assert api.post("admin", f"/hazards/{hid}/plan", json=api.plan_body(hid, deadline=late)).status_code == 200
    elif case == "street_verifies":
        r, code = api.act("street", hid, "accept"), 403
    elif case == "verify_without_note":
        r, code = api.post("sector", f"/hazards/{hid}/verify", json={"accept": True, "note": ""}), 422
    elif case == "text_jpg":
        r, code = api.post("site", f"/hazards/{hid}/attachments",
                           files={"file": ("photo.jpg", b"just some text, not a JPEG", "image/jpeg")}), 415
    elif case == "eleven_mb":
        r, code = api.post("site", f"/hazards/{hid}/attachments",
                           files={"file": ("big.jpg", JPEG + b"\x00" * (11 * 1024 * 1024), "image/jpeg")}), 413
    else:
        r, code = api.get("admin", "/reports/hazards", params={"start": "2026-02-01T00:00:00+08:00",
                                                              "end": "2026-01-01T00:00:00+08:00"}), 422
    assert r.status_code == code, r.text
    assert isinstance(r.json()["detail"], str)


def test_attachments_are_kept_and_served(api: HazardApi) -> None:
    hid = api.hazard_in("rectifying")
    r = api.post("site", f"/hazards/{hid}/attachments", files={"file": ("整改照片.png", PNG, "text/plain")})
    assert r.status_code == 201, r.text
    att = r.json()
    assert (att["type"], att["size"]) == ("image/png", len(PNG))
    got = api.get("viewer", f"/hazards/{hid}/attachments/{att['id']}")
    assert got.status_code == 200 and got.content == PNG and got.headers["content-type"] == "image/png"
    assert api.get("other_site", f"/hazards/{hid}/attachments/{att['id']}").status_code == 404
    events = api.get("admin", f"/hazards/{hid}").json()["events"]
    assert events[-1]["type"] == "attachment" and events[-1]["attachment"] == att["id"]


def test_reports_json_csv_xlsx(api: HazardApi) -> None:
    a = api.hazard_in("closed")
    api.hazard_in("listed")
    r = api.post("bureau", "/hazards", json={"site": "S2", "title": "y"})  # an inspection: the bureau sees S2
    assert r.status_code == 201
    span = {"start": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "end": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    rows = api.get("admin", "/reports/hazards", params={**span, "by": "sector"}).json()
    assert rows[-1] == {"group": "total", "listed": 3, "closed": 1, "open": 2, "overdue": 0,
                        "median_days_to_close": rows[-1]["median_days_to_close"]}
    assert rows[-1]["median_days_to_close"] is not None and rows[-1]["median_days_to_close"] < 0.01
    assert [x["group"] for x in rows] == ["trade", "total"]
    text = api.get("admin", "/reports/hazards", params={**span, "format": "csv"})
    assert text.headers["content-type"].startswith("text/csv") and text.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(text.content.decode("utf-8-sig"))))
    assert table[0] == ["group", "listed", "closed", "open", "overdue", "median_days_to_close"]
    assert table[1][:5] == ["north", "3", "1", "2", "0"] and table[-1][0] == "total"
    x = api.get("admin", "/reports/hazards", params={**span, "format": "xlsx"})
    wb = openpyxl.load_workbook(io.BytesIO(x.content))
    summary = [list(row) for row in wb["summary"].iter_rows(values_only=True)]
    assert summary[0][:6] == ["group", "listed", "closed", "open", "overdue", "median_days_to_close"]
    assert summary[1][:5] == ["north", 3, 1, 2, 0] and summary[1][6] == "北街"
    listed = [row[0] for row in wb["hazards"].iter_rows(min_row=2, values_only=True)]
    assert a in listed and len(listed) == 3
    mine = api.get("site", "/reports/hazards", params=span).json()
    assert mine[-1]["listed"] == 2  # a site user counts its own sites' hazards only


def test_credit_endpoints(api: HazardApi) -> None:
    api.hazard_in("listed")
    one = api.get("site", "/sites/S1/credit").json()
    assert one["site"] == "S1" and one["score"] == 95.0 and one["grade"] == "A"
    assert {"name": "hazards_general", "points": -5.0, "detail": "1 general hazard × 5"} in one["factors"]
    assert api.get("site", "/sites/S2/credit").status_code == 404
    worst = api.get("admin", "/credit").json()
    assert [c["site"] for c in worst] == ["S1", "S2"]
    assert api.get("admin", "/credit", params={"grade": "D"}).json() == []


MiB = 1024 * 1024


@pytest.mark.parametrize(("extra", "code"), [(0, 201), (1, 413)])
def test_an_attachment_of_exactly_10_mib_fits_one_byte_more_does_not(api: HazardApi, extra: int, code: int) -> None:
    """The multipart framing around the file must not count against the file's 10 MiB."""
    hid = api.hazard_in("rectifying")
    data = PNG + b"\x00" * (10 * MiB - len(PNG) + extra)
    r = api.post("site", f"/hazards/{hid}/attachments", files={"file": ("现场.png", data, "image/png")})
    assert r.status_code == code, r.text[:300]
    if code == 201:
        assert r.json()["size"] == 10 * MiB
    else:
        assert "larger than 10 MB" in r.json()["detail"]


def test_a_download_keeps_its_chinese_name_and_is_sandboxed(api: HazardApi) -> None:
    hid = api.hazard_in("rectifying")
    att = api.post("site", f"/hazards/{hid}/attachments", files={"file": ("整改照片 1.png", PNG, "image/png")}).json()
    got = api.get("viewer", f"/hazards/{hid}/attachments/{att['id']}")
    disposition = got.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="_____1.png"'), disposition  # the ASCII fallback
    assert "filename*=UTF-8''%E6%95%B4%E6%94%B9%E7%85%A7%E7%89%87%201.png" in disposition
    assert got.headers["content-security-policy"] == "sandbox"
    assert got.headers["x-content-type-options"] == "nosniff"


def test_a_report_ending_in_the_future_counts_no_hazard_overdue_before_its_deadline(api: HazardApi) -> None:
    hid = api.hazard_in("listed")
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert api.post("site", f"/hazards/{hid}/plan", json=api.plan_body(hid, deadline=soon)).status_code == 200
    span = {"start": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "end": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    total = api.get("admin", "/reports/hazards", params=span).json()[-1]
    assert (total["listed"], total["open"], total["overdue"]) == (1, 1, 0)


def test_report_files_keep_a_formula_like_title_as_text(api: HazardApi) -> None:
    title = '=HYPERLINK("http://evil.example","点我")'
    assert api.post("site", "/hazards", json={"site": "S1", "title": title}).status_code == 201
    span = {"start": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "end": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    x = api.get("admin", "/reports/hazards", params={**span, "format": "xlsx"})
    (cell,) = [row[4] for row in openpyxl.load_workbook(io.BytesIO(x.content))["hazards"].iter_rows(min_row=2)]
    assert (cell.value, cell.data_type) == (title, "s")


def test_a_plan_deadline_in_the_past_is_refused_except_for_the_admin(api: HazardApi) -> None:
    hid = api.hazard_in("listed")
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for who in ("site", "sector"):
        r = api.post(who, f"/hazards/{hid}/plan", json=api.plan_body(hid, deadline=past))
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith(f"body deadline: {past}") and "in the past" in r.json()["detail"]
    assert api.get("admin", f"/hazards/{hid}").json()["state"] == "listed"
    assert api.post("admin", f"/hazards/{hid}/plan", json=api.plan_body(hid, deadline=past)).status_code == 200
