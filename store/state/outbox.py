"""The notification outbox: rows added with their events, claimed and finished by the delivery worker.

Each target (one subscription, or one MQTT topic) is a FIFO: only its oldest pending row
(its head) may be sent, so a receiver sees a given alert's events in order even after it
was down. A claim is a lease: ``next_attempt_ms`` moves ``lease_ms`` ahead with a
compare-and-set, so two processes sharing PostgreSQL never send the same row at once, and
a process killed mid-send leaves a row that becomes due again when the lease ends.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Subquery, delete, exists, func, select, update
from sqlalchemy.orm import aliased

from store.state.book import FIRING_STATES
from store.state.convert import outbox_of
from store.state.models import AlertRow, OutboxRow
from store.state.records import OutboxItem
from store.state.session import SessionSource

PENDING = "pending"
FINAL_STATUSES = ("delivered", "failed", "silenced", "dropped")


class OutboxStore(SessionSource):
    def claim_heads(self, now_ms: int, lease_ms: int, limit: int = 100,
                    busy: Collection[str] = ()) -> list[OutboxItem]:
        """Claims the due head row of up to ``limit`` targets not in ``busy``, oldest first."""
        heads = self._heads()
        q = (select(OutboxRow).join(heads, OutboxRow.id == heads.c.head)
             .where(OutboxRow.next_attempt_ms <= now_ms).order_by(OutboxRow.id))
        with self._read() as s:
            candidates = [outbox_of(r) for r in s.scalars(q)]
        out = []
        for item in candidates:
            if item.target in busy:
                continue
            if self._claim(item, now_ms, lease_ms):
                out.append(item)
                if len(out) >= limit:
                    break
        return out

    def claim_head(self, target: str, now_ms: int, lease_ms: int) -> OutboxItem | None:
        """Claims ``target``'s head row if it is due (the worker's next send on a target it holds)."""
        q = (select(OutboxRow).where(OutboxRow.target == target, OutboxRow.status == PENDING)
             .order_by(OutboxRow.id).limit(1))
        with self._read() as s:
            row = s.scalars(q).first()
            item = None if row is None else outbox_of(row)
        if item is None or item.next_attempt_ms > now_ms:
            return None
        return item if self._claim(item, now_ms, lease_ms) else None

    def _claim(self, item: OutboxItem, now_ms: int, lease_ms: int) -> bool:
        with self._write() as s:
            res = s.execute(update(OutboxRow)
                            .where(OutboxRow.id == item.id, OutboxRow.status == PENDING,
                                   OutboxRow.next_attempt_ms == item.next_attempt_ms)
                            .values(next_attempt_ms=now_ms + lease_ms))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def mark_delivered(self, row_id: int, at_ms: int, attempts: int) -> None:
        with self._write() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == row_id)
                      .values(status="delivered", delivered_ms=at_ms, attempts=attempts, last_error=None))

    def mark_retry(self, row_id: int, attempts: int, next_attempt_ms: int, error: str) -> None:
        with self._write() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == row_id, OutboxRow.status == PENDING)
                      .values(attempts=attempts, next_attempt_ms=next_attempt_ms, last_error=error[:2000]))

    def mark_final(self, row_id: int, status: str, attempts: int, error: str) -> None:
        """Gives up on a row: ``failed`` (not retryable or too old), ``silenced`` or ``dropped``."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status={status!r}: expected one of {', '.join(FINAL_STATUSES)}")
        with self._write() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == row_id)
                      .values(status=status, attempts=attempts, last_error=error[:2000]))

    def silenced_latest(self, since_ms: int) -> list[OutboxItem]:
        """Silenced rows created since ``since_ms`` that are the newest row of their (target,
        alert), for alerts still firing: what to send once their silence has ended."""
        newer = aliased(OutboxRow)
        q = (select(OutboxRow)
             .join(AlertRow, AlertRow.id == OutboxRow.alert_id)
             .where(OutboxRow.subject == "alert", OutboxRow.status == "silenced",
                    OutboxRow.created_ms >= since_ms,
                    AlertRow.state.in_(FIRING_STATES),
                    ~exists().where(newer.target == OutboxRow.target, newer.alert_id == OutboxRow.alert_id,
                                    newer.id > OutboxRow.id))
             .order_by(OutboxRow.id))
        with self._read() as s:
            return [outbox_of(r) for r in s.scalars(q)]

    def requeue(self, row_id: int, due_ms: int, note: str) -> bool:
        """Makes a finished row pending again (a silence ended); False if it changed meanwhile."""
        with self._write() as s:
            res = s.execute(update(OutboxRow).where(OutboxRow.id == row_id, OutboxRow.status != PENDING,
                                                    OutboxRow.status != "delivered")
                            .values(status=PENDING, next_attempt_ms=due_ms, last_error=note))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def outbox_depth(self) -> int:
        """Rows still to deliver."""
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(OutboxRow)
                                .where(OutboxRow.status == PENDING)) or 0)

    def next_due_ms(self) -> int | None:
        """When the earliest head row is due (the worker sleeps until then), or None.

        Heads only: the rows queued behind a head that waits for its retry are "due" by their
        own time but cannot be sent, and counting them would make the worker spin."""
        heads = self._heads()
        q = select(func.min(OutboxRow.next_attempt_ms)).join(heads, OutboxRow.id == heads.c.head)
        with self._read() as s:
            v = s.scalar(q)
            return None if v is None else int(v)

    @staticmethod
    def _heads() -> Subquery:
        """(target, head): the oldest pending row id of every target."""
        return (select(OutboxRow.target, func.min(OutboxRow.id).label("head"))
                .where(OutboxRow.status == PENDING).group_by(OutboxRow.target).subquery())

    def outbox_items(self, *, event_id: int | None = None, status: str | None = None,
                     target: str | None = None, event_key: str | None = None) -> list[OutboxItem]:
        """Outbox rows in id order, filtered (inspection and tests)."""
        q = select(OutboxRow).order_by(OutboxRow.id)
        if event_id is not None:
            q = q.where(OutboxRow.event_id == event_id)
        if event_key is not None:
            q = q.where(OutboxRow.event_key == event_key)
        if status is not None:
            q = q.where(OutboxRow.status == status)
        if target is not None:
            q = q.where(OutboxRow.target == target)
        with self._read() as s:
            return [outbox_of(r) for r in s.scalars(q)]

    def purge_outbox(self, finished_before_ms: int) -> int:
        """Deletes finished rows created before ``finished_before_ms``; returns how many."""
        with self._write() as s:
            return int(s.execute(delete(OutboxRow).where(OutboxRow.status != PENDING,
                                                         OutboxRow.created_ms < finished_before_ms))
                       .rowcount)  # type: ignore[attr-defined]
