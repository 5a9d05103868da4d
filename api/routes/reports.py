"""Hazard reports for the joint meetings (contract section 10): by street or by sector, JSON/CSV/XLSX.

The CSV is UTF-8 with a byte order mark, so that Excel in a Chinese locale (which reads a CSV
without one as GBK) shows the names right; see ``supervision.reports``.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from api.deps import API_CHECKS, Caller, Ctx, SiteScope, State, sees_site
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, Responses
from api.schemas_supervision import ReportRowOut
from store.state.records import dt_to_ms
from supervision import hazard_report, sees, to_csv, to_xlsx

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILES: Responses = {200: {"content": {"text/csv": {}, XLSX: {}}, "description": "the rows (format csv or xlsx)"}}


@router.get("/hazards", response_model=list[ReportRowOut], responses=FILES)
def hazards_report(
    ctx: Ctx, caller: Caller, state: State, scope: SiteScope,
    start: AwareDatetime = Query(description="period start (RFC 3339)"),
    end: AwareDatetime = Query(description="period end, exclusive (RFC 3339)"),
    by: Literal["street", "sector"] = "street",
    format: Literal["json", "csv", "xlsx"] = "json",
) -> list[ReportRowOut] | Response:
    """Hazards listed, closed, open, overdue and the median days to close, per group and in total."""
    if start > end:
        raise ApiError(422, f"query start: {start.isoformat()} is after end {end.isoformat()}")
    d = ctx.district
    start_ms, end_ms = dt_to_ms(start), dt_to_ms(end)
    hazards = [h for h in state.hazards_touching(start_ms, end_ms) if sees(caller, h)]
    visible = [s for sid, s in d.sites.items() if sees_site(caller, scope, sid)]
    groups = sorted({s.street if by == "street" else s.sector for s in visible}
                    | {h.street if by == "street" else h.sector for h in hazards})
    rows = hazard_report(hazards, groups, by, start_ms, end_ms, at_ms=ctx.clock())
    stem = f"hazards-{by}-{start.date().isoformat()}-{end.date().isoformat()}"
    if format == "csv":
        return Response(to_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'})
    if format == "xlsx":
        names = ({k: v.name for k, v in d.streets.items()} if by == "street"
                 else {k: v.name for k, v in d.departments.items()})
        return Response(to_xlsx(rows, hazards, d.tz, names), media_type=XLSX,
                        headers={"Content-Disposition": f'attachment; filename="{stem}.xlsx"'})
    return [ReportRowOut.of(r) for r in rows]
