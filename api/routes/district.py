"""``GET /api/v1/district`` and ``GET /api/v1/rules``: what a client needs to draw the district.

The console shows times in the district's zone, names streets, and draws rule levels on its
charts; the registry endpoints of contract section 5 give neither, so these read-only views of
the config add them (extensions, nothing removed). The config is not secret to a caller who may
use the API at all, like ``/departments``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.deps import API_CHECKS, Ctx
from api.routes import AUTH_RESPONSES
from api.schemas import FamilyName
from domain.config import DeadmanRule, ThresholdRule, TrendRule
from domain.durations import format_duration
from domain.families import FAMILIES

router = APIRouter(prefix="/api/v1", tags=["registry"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES)


@router.get("/district")
def get_district(ctx: Ctx) -> dict[str, Any]:
    """The district's name, time zone, streets, metric units per family and escalation steps."""
    d = ctx.district
    return {
        "name": d.name,
        "timezone": d.config.timezone,
        "streets": [{"id": s.id, "name": s.name, "office": s.office} for s in d.streets.values()],
        "families": {fam: {m.name: {"unit": m.unit, "binary": m.binary, "derived": m.derived}
                           for m in metrics.values()} for fam, metrics in FAMILIES.items()},
        "escalation": [{"severity_at_least": e.severity_at_least.label,
                        "unacknowledged_for_s": e.unacknowledged_for, "notify": list(e.notify)}
                       for e in d.escalation],
    }


def _rule_json(r: ThresholdRule | TrendRule | DeadmanRule) -> dict[str, Any]:
    out: dict[str, Any] = {"id": r.id, "kind": r.kind, "family": r.family}
    if isinstance(r, ThresholdRule):
        out |= {"metric": r.metric, "direction": r.direction,
                "levels": {sev.label: bound for sev, bound in r.ordered_levels},
                "hysteresis": r.hysteresis, "for": format_duration(r.for_)}
    elif isinstance(r, TrendRule):
        out |= {"metric": r.metric, "window": format_duration(r.window), "severity": r.severity.label,
                "slope_above": r.slope_above, "slope_below": r.slope_below,
                "forecast": None if r.forecast is None else {
                    "rule": r.forecast.rule, "level": r.forecast.level.label,
                    "within": format_duration(r.forecast.within)}}
    else:
        out |= {"metric": None, "after": format_duration(r.after), "severity": r.severity.label, "per": r.per}
    return out


@router.get("/rules")
def list_rules(ctx: Ctx, family: FamilyName | None = Query(None, description="rules of this family "
                                                                          "(deadman rules for every family included)")
               ) -> list[dict[str, Any]]:
    """The district's rules, with threshold levels (lowest severity first), optionally of one family."""
    return [_rule_json(r) for r in ctx.district.config.rules
            if family is None or r.family in (family, "*")]
