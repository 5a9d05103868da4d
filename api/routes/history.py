"""``GET /api/v1/history``: aggregated readings of one site's metric from InfluxDB."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.deps import API_CHECKS, Caller, Ctx, History, SiteScope, visible_site
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, BAD_REQUEST, NOT_FOUND, UNAVAILABLE
from api.schemas import HistoryOut, PointOut
from domain.durations import parse_duration
from store.history import HistoryError

router = APIRouter(prefix="/api/v1", tags=["history"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES)

SiteParam = Query(min_length=1, max_length=64, description="a site id of the registry")
MetricParam = Query(min_length=1, max_length=64, description="a metric of the site's family")


def duration_param(name: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as err:
        raise ApiError(400, f"{name}: {err}") from None


# InfluxDB keeps nanoseconds in an int64 (1677..2262); we stay after the epoch as readings do.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2262, 1, 1, tzinfo=UTC)


def ms(name: str, dt: datetime) -> int:
    if not EARLIEST <= dt < LATEST:
        raise ApiError(400, f"{name}={dt.isoformat()}: expected a time between 1970 and 2261")
    return int(dt.timestamp() * 1000)


@router.get("/history", response_model=HistoryOut, responses=BAD_REQUEST | NOT_FOUND | UNAVAILABLE)
def get_history(
    ctx: Ctx, caller: Caller, scope: SiteScope, history: History,
    site: str = SiteParam,
    metric: str = MetricParam,
    start: AwareDatetime | None = Query(None, description="RFC 3339; default end - 1h"),
    end: AwareDatetime | None = Query(None, description="RFC 3339; default now"),
    every: str = Query("1m", max_length=32, description="window length: 10s, 1m, 1h, 1d"),
    agg: Literal["mean", "max", "min", "last", "count", "p95"] = "mean",
    device: str | None = Query(None, max_length=128, description="only this device's readings"),
) -> HistoryOut:
    """A metric aggregated per window between start and end; empty windows are null."""
    visible_site(caller, scope, site)
    every_s = duration_param("every", every)
    end_dt = end or datetime.fromtimestamp(time.time(), UTC)
    end_ms = ms("end", end_dt)
    start_dt = start or max(EARLIEST, end_dt - timedelta(hours=1))
    start_ms = ms("start", start_dt)
    try:
        res = history.history(site, metric, start_ms=start_ms, end_ms=end_ms, every_s=every_s, agg=agg,
                              device=device)
    except HistoryError as err:
        raise ApiError(400, str(err)) from None
    tz = ctx.district.tz
    return HistoryOut(
        site=res.site, metric=res.metric, agg=agg, every=res.every, source=res.source,  # type: ignore[arg-type]
        start=start_dt.astimezone(tz), end=end_dt.astimezone(tz),
        points=[PointOut(time=datetime.fromtimestamp(t / 1000, UTC).astimezone(tz), value=v)
                for t, v in res.points],
    )
