"""The audit trail: who changed what, from where (contract section 9): the ``AuditStore`` mixin."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from domain.clock import now_ms
from store.state.models_people import AuditRow
from store.state.session import SessionSource

MAX_AUDIT_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at_ms: int
    actor: str
    role: str | None
    department: str | None
    action: str
    target: str
    detail: str
    ip: str


class AuditStore(SessionSource):
    def record_audit(self, *, actor: str, action: str, target: str = "", detail: str = "",
                     role: str | None = None, department: str | None = None, ip: str = "",
                     at_ms: int | None = None) -> None:
        """Appends one entry; long values are cut to their column (an audit write must not fail)."""
        with self._write() as s:
            s.add(AuditRow(at_ms=now_ms() if at_ms is None else at_ms, actor=actor[:128], role=role,
                           department=department, action=action[:64], target=target[:256],
                           detail=detail[:2000], ip=ip[:64]))

    def list_audit(self, *, since_ms: int | None = None, actor: str | None = None, action: str | None = None,
                   limit: int = 100) -> list[AuditEntry]:
        """Newest first. ``action`` matches exactly, or as a prefix when it ends with ``*`` (``user.*``)."""
        q = select(AuditRow).order_by(AuditRow.at_ms.desc(), AuditRow.id.desc()).limit(min(limit, MAX_AUDIT_LIMIT))
        if since_ms is not None:
            q = q.where(AuditRow.at_ms >= since_ms)
        if actor is not None:
            q = q.where(AuditRow.actor == actor)
        if action is not None:
            if action.endswith("*"):
                q = q.where(AuditRow.action.startswith(action[:-1], autoescape=True))
            else:
                q = q.where(AuditRow.action == action)
        with self._read() as s:
            return [AuditEntry(r.id, r.at_ms, r.actor, r.role, r.department, r.action, r.target, r.detail, r.ip)
                    for r in s.scalars(q)]
