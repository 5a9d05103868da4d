"""The registry: departments and sites, one site with its latest values and open alerts."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query

from api.deps import API_CHECKS, Caller, Ctx, MaybeHistory, SiteScope, State, sees_alert, sees_site, visible_site
from api.routes import AUTH_RESPONSES, NOT_FOUND, UNAVAILABLE
from api.schemas import AlertOut, DepartmentOut, FamilyName, LatestOut, SiteDetailOut, SiteOut

router = APIRouter(prefix="/api/v1", tags=["registry"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES)


@router.get("/departments", response_model=list[DepartmentOut])
def list_departments(ctx: Ctx, caller: Caller) -> list[DepartmentOut]:
    """Every department of the district (the directory is not secret)."""
    return [DepartmentOut.of(d) for d in ctx.district.departments.values()]


@router.get("/sites", response_model=list[SiteOut])
def list_sites(ctx: Ctx, caller: Caller, scope: SiteScope,
               family: FamilyName | None = None, street: str | None = Query(None, max_length=64)
               ) -> list[SiteOut]:
    """Sites the caller may see, optionally of one family or street."""
    d = ctx.district
    return [SiteOut(**SiteOut.fields_of(s, d.street_office(s))) for s in d.sites.values()
            if sees_site(caller, scope, s.id)
            and (family is None or s.family == family) and (street is None or s.street == street)]


@router.get("/sites/{site_id}", response_model=SiteDetailOut, responses=NOT_FOUND | UNAVAILABLE)
def get_site(site_id: str, ctx: Ctx, caller: Caller, scope: SiteScope, state: State, history: MaybeHistory
             ) -> SiteDetailOut:
    """One site with its latest value per metric and its alerts still on the books."""
    visible_site(caller, scope, site_id)
    d, tz = ctx.district, ctx.district.tz
    site = d.sites[site_id]
    latest = ctx.alerts.latest(site_id) if ctx.alerts is not None else {}
    if not latest and history is not None:  # the process has just started: the engine has seen nothing yet
        latest = history.latest(site_id)
    open_alerts = [AlertOut.of(a, tz) for a in state.open_alerts_for_site(site_id)
                   if sees_alert(caller, a)]
    return SiteDetailOut(
        **SiteOut.fields_of(site, d.street_office(site)),
        latest={m: LatestOut(value=v, time=datetime.fromtimestamp(t / 1000, UTC).astimezone(tz), device=dev)
                for m, (v, t, dev) in sorted(latest.items())},
        open_alerts=open_alerts,
    )

