"""``GET /api/v1/audit``: the audit trail, newest first (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query

from api.deps import API_CHECKS, Admin, Ctx, State
from api.routes import AUTH_RESPONSES, FORBIDDEN
from api.schemas_people import AuditOut, Rfc3339
from store.state.records import dt_to_ms

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES | FORBIDDEN)


@router.get("", response_model=list[AuditOut])
def list_audit(
    ctx: Ctx, admin: Admin, state: State,
    since: Rfc3339 | None = Query(None, description="at or after (RFC 3339)"),
    actor: str | None = Query(None, max_length=128, description="a username, token:{department} or admin"),
    action: str | None = Query(None, max_length=64, description="e.g. alert.ack, or a prefix: user.*"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[AuditOut]:
    """Sign-ins (failed ones too) and every change, newest first (admin only)."""
    tz = ctx.district.tz
    entries = state.list_audit(since_ms=None if since is None else dt_to_ms(since), actor=actor, action=action,
                               limit=limit)
    return [AuditOut(at=datetime.fromtimestamp(e.at_ms / 1000, UTC).astimezone(tz), actor=e.actor, role=e.role,
                     department=e.department, action=e.action, target=e.target, detail=e.detail, ip=e.ip)
            for e in entries]
