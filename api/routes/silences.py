"""Silences: alerts are still recorded, but a department's notifications for a site are held back."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from api.deps import STAFF_CHECKS, Audit, Caller, Ctx, Operator, Principal, SiteScope, State, sees_site
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, BAD_BODY, FORBIDDEN, NOT_FOUND
from api.schemas import SilenceIn, SilenceOut
from api.scope import Scope
from domain.families import FAMILIES
from store.state.records import Silence

# Site users have no silences (403); viewers read them, operators also set and end their own.
router = APIRouter(prefix="/api/v1/silences", tags=["silences"], dependencies=STAFF_CHECKS,
                   responses=AUTH_RESPONSES | FORBIDDEN)


def _out(s: Silence, ctx: Ctx) -> SilenceOut:
    tz = ctx.district.tz
    return SilenceOut(id=s.id, site=s.site, metric=s.metric, until=s.until.astimezone(tz), reason=s.reason,
                      department=s.department, created_by=s.created_by,
                      created_at=s.created_at.astimezone(tz))


@router.post("", status_code=201, response_model=SilenceOut, responses=FORBIDDEN | BAD_BODY)
def create_silence(body: SilenceIn, ctx: Ctx, caller: Operator, scope: SiteScope, state: State, audit: Audit
                   ) -> SilenceOut:
    """Hold back notifications about a site (one metric, or all) until a time."""
    site = ctx.district.sites.get(body.site)
    if site is None:
        raise ApiError(422, f"body site: unknown site {body.site!r} (not in the district config)")
    if not sees_site(caller, scope, site.id):
        raise ApiError(403, f"site {site.id} is not supervised by department {caller.department!r}")
    if body.metric is not None and body.metric not in FAMILIES[site.family]:
        raise ApiError(422, f"body metric: site {site.id} ({site.family}) has no metric {body.metric!r}")
    department = body.department
    if caller.department is not None:
        if department not in (None, caller.department):
            raise ApiError(403, f"department {caller.department!r} may not silence {department!r}")
        department = caller.department
    elif department is not None and department not in ctx.district.departments:
        raise ApiError(422, f"body department: unknown department {department!r}")
    try:
        silence = state.create_silence(site=site.id, until=body.until, reason=body.reason, metric=body.metric,
                                       department=department, created_by=caller.actor)
    except ValueError as err:
        raise ApiError(422, f"body {err}") from None
    audit.record("silence.create", f"silence:{silence.id}",
                 f"site {silence.site}, metric {silence.metric or '*'}, department {department or '*'}, "
                 f"until {silence.until.isoformat()}")
    return _out(silence, ctx)


def visible(caller: Principal, scope: Scope, s: Silence) -> bool:
    """A department sees its own silences (whatever became of their site, so it can still end
    them) and the district-wide ones (set by the admin for every department) of sites it sees:
    their site and reason are no business of departments that cannot see the site. A district-wide
    silence of a site no longer in the config is the admin's alone. The admin sees every one."""
    if caller.is_admin or (caller.department is not None and s.department == caller.department):
        return True
    return s.department is None and sees_site(caller, scope, s.site)


@router.get("", response_model=list[SilenceOut])
def list_silences(ctx: Ctx, caller: Caller, scope: SiteScope, state: State,
                  department: str | None = Query(None, max_length=64,
                                                 description="admin: this one's and everyone's")
                  ) -> list[SilenceOut]:
    """Silences in force for the caller: its own and the district-wide ones of sites it sees;
    expired ones drop out."""
    if caller.department is not None:
        department = caller.department
    return [_out(s, ctx) for s in state.list_silences(department) if visible(caller, scope, s)]


@router.delete("/{silence_id}", status_code=204, response_class=Response, responses=NOT_FOUND | FORBIDDEN)
def delete_silence(silence_id: str, caller: Operator, scope: SiteScope, state: State, audit: Audit) -> Response:
    """End one of the caller's silences (the admin may end any)."""
    found = next((s for s in state.list_silences() if s.id == silence_id.strip()), None)
    if found is None or (found.department is None and not visible(caller, scope, found)):
        # a district-wide one the caller may not even list answers as one that does not exist
        raise ApiError(404, f"silence {silence_id!r} not found (or already ended)")
    if caller.department is not None and found.department != caller.department:
        owner = "every department" if found.department is None else f"department {found.department!r}"
        raise ApiError(403, f"silence {silence_id} was set for {owner}; "
                            "only its owner or the admin may end it")
    if not state.delete_silence(found.id, caller.department):
        raise ApiError(404, f"silence {silence_id!r} not found (or already ended)")
    audit.record("silence.delete", f"silence:{found.id}", f"site {found.site}")
    return Response(status_code=204)
