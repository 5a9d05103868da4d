"""The joint meeting's figures (隐患治理联席会): hazards by street or by sector over [start, end).

Per group, counted over the period:
- ``listed``: hazards listed in it; ``closed``: hazards closed (verified) in it;
- ``open``: hazards still on the books at its end;
- ``overdue``: hazards that were past their deadline while unclosed at some time in it (up to
  now: an open hazard whose deadline is still ahead is not overdue, even in a period ending later);
- ``median_days_to_close``: the median listing-to-closing time of those closed in it (null if none).
The last row (``group`` = ``total``) counts every hazard once.

CSV is UTF-8 with a byte order mark: Excel in a Chinese locale otherwise reads a BOM-less CSV
as GBK and garbles the names; every other tool skips the BOM. XLSX is written by openpyxl.

Hazard titles are typed by enterprises and inspectors, so no text reaches a spreadsheet as a
formula (CSV/formula injection): in the XLSX a text starting with ``= + - @``, a tab or a carriage
return is a string cell marked quotePrefix (the text itself unchanged); in the CSV, which has no
cell types, such a text gets a leading ``'`` as OWASP advises.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import tzinfo
from typing import Literal

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font

from domain.clock import now_ms
from domain.hazards import Hazard
from store.state.records import dt_to_ms
from supervision.json import rfc3339

DAY_MS = 86_400_000
COLUMNS = ("group", "listed", "closed", "open", "overdue", "median_days_to_close")
TOTAL = "total"
GroupBy = Literal["street", "sector"]
HAZARD_COLUMNS = ("id", "site", "street", "sector", "title", "level", "source", "state", "listed_at",
                  "deadline", "overdue", "closed_at")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as the start of a formula


@dataclass(frozen=True, slots=True)
class ReportRow:
    group: str
    listed: int
    closed: int
    open: int
    overdue: int
    median_days_to_close: float | None


def _ms(h: Hazard) -> tuple[int, int, int | None]:
    return dt_to_ms(h.listed_at), dt_to_ms(h.deadline), None if h.closed_at is None else dt_to_ms(h.closed_at)


def _row(group: str, hazards: Iterable[Hazard], start: int, end: int, now: int) -> ReportRow:
    listed = closed = still_open = overdue = 0
    days: list[float] = []
    for h in hazards:
        lst, dl, cl = _ms(h)
        listed += start <= lst < end
        if cl is not None and start <= cl < end:
            closed += 1
            days.append((cl - lst) / DAY_MS)
        still_open += lst < end and (cl is None or cl >= end)
        # Late from the deadline until it closed (or now, if still open), within the period.
        late_until = min(cl if cl is not None else now, end)
        overdue += late_until > dl and late_until > start
    median = round(statistics.median(days), 2) if days else None
    return ReportRow(group, listed, closed, still_open, overdue, median)


def hazard_report(hazards: Sequence[Hazard], groups: Sequence[str], by: GroupBy, start_ms: int,
                  end_ms: int, at_ms: int | None = None) -> list[ReportRow]:
    """One row per group (in ``groups`` order; zeros included) and the total row last; ``at_ms``
    is now (an open hazard is late only up to it)."""
    if start_ms > end_ms:
        raise ValueError("start is after end")
    now = now_ms() if at_ms is None else at_ms
    def key(h: Hazard) -> str:
        return h.street if by == "street" else h.sector

    rows = [_row(g, (h for h in hazards if key(h) == g), start_ms, end_ms, now) for g in groups]
    return [*rows, _row(TOTAL, hazards, start_ms, end_ms, now)]


def csv_text(value: object) -> object:
    """A text a spreadsheet would run as a formula, defused with a leading ``'``; others as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _as_text(cells: Iterable[Cell]) -> None:
    """Text cells that look like formulas become plain strings (openpyxl makes ``=...`` a formula)."""
    for cell in cells:
        if isinstance(cell.value, str) and cell.value.startswith(FORMULA_START):
            cell.data_type = "s"
            cell.quotePrefix = True  # Excel shows it as typed and keeps it text when edited


def to_csv(rows: Sequence[ReportRow]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(["" if v is None else csv_text(v) for v in asdict(r).values()])
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(rows: Sequence[ReportRow], hazards: Sequence[Hazard], tz: tzinfo,
            names: dict[str, str] | None = None) -> bytes:
    """Sheet ``summary`` (the report's columns plus the group's display name) and sheet ``hazards``."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "summary"
    ws.append([*COLUMNS, "name"])
    for r in rows:
        ws.append([*asdict(r).values(), (names or {}).get(r.group, "")])
    hs = wb.create_sheet("hazards")
    hs.append(list(HAZARD_COLUMNS))
    for h in hazards:
        hs.append([h.id, h.site, h.street, h.sector, h.title, h.level.value, h.source.value, h.state.value,
                   rfc3339(h.listed_at, tz), rfc3339(h.deadline, tz), h.overdue,
                   None if h.closed_at is None else rfc3339(h.closed_at, tz)])
    for sheet in (ws, hs):
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in sheet.iter_rows(min_row=2):
            _as_text(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
