"""Safety credit (contract section 10): a site's score and the district's warning list.

Computed from the book on every call (``supervision.credit``), never stored; docs/credit.md
explains the formula.
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import API_CHECKS, Caller, Ctx, SiteScope, State, sees_site, visible_site
from api.routes import AUTH_RESPONSES, NOT_FOUND
from api.schemas_supervision import CreditOut
from supervision import credit_scores

router = APIRouter(prefix="/api/v1", tags=["credit"], dependencies=API_CHECKS, responses=AUTH_RESPONSES)


@router.get("/sites/{site_id}/credit", response_model=CreditOut, responses=NOT_FOUND)
def site_credit(site_id: str, ctx: Ctx, caller: Caller, state: State, scope: SiteScope) -> CreditOut:
    """One site's score, grade and the factors that took points away."""
    visible_site(caller, scope, site_id)
    (score,) = credit_scores(ctx.district, state, [site_id])
    return CreditOut.of(score)


@router.get("/credit", response_model=list[CreditOut])
def credit_list(
    ctx: Ctx, caller: Caller, state: State, scope: SiteScope,
    grade: str | None = Query(None, max_length=16, description="only this grade (D: the warning list)"),
    street: str | None = Query(None, max_length=64),
    sector: str | None = Query(None, max_length=64),
) -> list[CreditOut]:
    """Every visible site's score and grade, worst first."""
    d = ctx.district
    sites = [sid for sid, s in d.sites.items() if sees_site(caller, scope, sid)
             and street in (None, s.street) and sector in (None, s.sector)]
    scores = credit_scores(d, state, sites)
    return [CreditOut.of(c) for c in scores if grade is None or c.grade == grade]
