"""``GET /api/v1/trend``: the slope of a metric over a recent window and when its levels would be reached."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from fastapi import APIRouter, Query

from alerting import fit_trend, upcoming
from api.deps import API_CHECKS, Caller, Ctx, History, SiteScope, visible_site
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, BAD_REQUEST, NOT_FOUND, UNAVAILABLE
from api.routes.history import MetricParam, SiteParam, duration_param
from api.schemas import ForecastOut, TrendOut
from domain.config import ThresholdRule
from domain.durations import format_duration
from store.history import HistoryError

router = APIRouter(prefix="/api/v1", tags=["trend"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES)
MAX_WINDOW_S = 86_400.0
# A line so flat that it gets there after the year 9000 never gets there in any useful sense
# (and Python's datetime ends at 9999).
FAR_FUTURE_MS = int(datetime(9000, 1, 1, tzinfo=UTC).timestamp() * 1000)


@router.get("/trend", response_model=TrendOut, responses=BAD_REQUEST | NOT_FOUND | UNAVAILABLE)
def get_trend(
    ctx: Ctx, caller: Caller, scope: SiteScope, history: History,
    site: str = SiteParam,
    metric: str = MetricParam,
    window: str = Query("15m", max_length=32, description="how far back to fit: 1m .. 1d"),
    device: str | None = Query(None, max_length=128, description="only this device's readings"),
) -> TrendOut:
    """Slope per minute over a window, the last value, and when each level not yet reached would be."""
    visible_site(caller, scope, site)
    window_s = duration_param("window", window)
    if not 60 <= window_s <= MAX_WINDOW_S:
        raise ApiError(400, f"window={window}: expected from 1m to {format_duration(MAX_WINDOW_S)}")
    now_ms = ctx.clock()
    try:
        points = history.window_points(site, metric, start_ms=now_ms - int(window_s * 1000),
                                       end_ms=now_ms + 1, device=device)
    except HistoryError as err:
        raise ApiError(400, str(err)) from None
    tz = ctx.district.tz
    fit = fit_trend(points)
    last, last_ms = (points[-1][1], points[-1][0]) if points else (None, None)
    forecast: list[ForecastOut] = []
    if fit is not None and last is not None:
        family = ctx.district.sites[site].family
        for rule in ctx.district.rules_for(family, metric):
            if not isinstance(rule, ThresholdRule):
                continue
            # ETA from the fitted line, "not yet reached" from the reading, as the trend rule does
            for severity, bound, eta in upcoming(rule, fit.slope_per_min, fit.value_at_last, fit.last_ts_ms,
                                                 last):
                forecast.append(ForecastOut(
                    rule=rule.id, level=severity.label, threshold=bound,  # type: ignore[arg-type]
                    eta=None if eta is None or eta > FAR_FUTURE_MS else _local(eta, tz)))
    return TrendOut(
        site=site, metric=metric, window=format_duration(window_s), points=len(points),
        slope_per_min=None if fit is None else fit.slope_per_min, last=last,
        last_time=None if last_ms is None else _local(last_ms, tz), forecast=forecast)


def _local(ms: int, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz)
