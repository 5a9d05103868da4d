"""Department tokens (stored hashed), subscriptions and silences."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from domain.clock import now_ms
from domain.severity import Severity
from store.state.convert import int_id, silence_of, subscription_of
from store.state.models import SilenceRow, SubscriptionRow, TokenRow
from store.state.records import CHANNELS, Silence, Subscription, dt_to_ms
from store.state.session import SessionSource

TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_token(s: Session, department: str, role: str = "operator", expires_ms: int | None = None) -> str:
    """A new bearer token for ``department``; only its SHA-256 is stored, so this is the one copy."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    s.add(TokenRow(department=department, token_hash=token_hash(token), created_ms=now_ms(), role=role,
                   expires_ms=expires_ms))
    return token


def live_token(s: Session, token: str) -> TokenRow | None:
    """The unrevoked row of ``token`` (expired or not), or None."""
    if not token:
        return None
    digest = token_hash(token)
    row = s.scalars(select(TokenRow).where(TokenRow.token_hash == digest, TokenRow.revoked_ms.is_(None))).first()
    # The index lookup already matched; compare again in constant time so that no code
    # path ever decides on a token by a short-circuiting string comparison.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row


def _check_topic(topic: str) -> None:
    if not topic or "+" in topic or "#" in topic or "\x00" in topic or len(topic.encode()) > 65535:
        raise ValueError(f"url={topic!r}: an mqtt subscription needs a topic without wildcards")


def _check_target(channel: str, url: str) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"channel={channel!r}: expected one of {', '.join(CHANNELS)}")
    if channel == "webhook":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url={url!r}: a webhook needs an http:// or https:// URL")
    else:
        _check_topic(url)


class AccessStore(SessionSource):
    # -- tokens ---------------------------------------------------------------------------

    def create_token(self, department: str) -> str:
        """A new operator token for ``department`` without expiry (see ``add_token``)."""
        with self._write() as s:
            return add_token(s, department)

    def department_for_token(self, token: str) -> str | None:
        """The department of a live (unrevoked) token, or None."""
        with self._read() as s:
            row = live_token(s, token)
            return None if row is None else row.department

    def revoke_token(self, token: str) -> bool:
        """Revokes one token; False when it is unknown or already revoked."""
        with self._write() as s:
            res = s.execute(update(TokenRow).where(TokenRow.token_hash == token_hash(token),
                                                   TokenRow.revoked_ms.is_(None)).values(revoked_ms=now_ms()))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def revoke_department_tokens(self, department: str) -> int:
        """Revokes every live token of a department; returns how many."""
        with self._write() as s:
            res = s.execute(update(TokenRow).where(TokenRow.department == department,
                                                   TokenRow.revoked_ms.is_(None)).values(revoked_ms=now_ms()))
            return int(res.rowcount)  # type: ignore[attr-defined]

    # -- subscriptions --------------------------------------------------------------------

    def create_subscription(self, *, department: str, channel: str, url: str, secret: str = "",
                            min_severity: Severity = Severity.BLUE, families: Iterable[str] = (),
                            streets: Iterable[str] = (), sites: Iterable[str] = (),
                            admin_scope: bool = False) -> Subscription:
        """Stores a subscription. ``channel`` is ``webhook`` (``url`` an http(s) URL; ``secret``
        signs the body) or ``mqtt`` (``url`` a topic on the service's broker). Where a target may
        point (contract section 6) is ``notify.TargetPolicy``'s to check, before this.
        Raises ValueError naming the option and the value for a bad channel or target."""
        _check_target(channel, url)
        row = SubscriptionRow(department=department, channel=channel, url=url, secret=secret,
                              min_severity=int(min_severity), families=list(families),
                              streets=list(streets), sites=list(sites), created_ms=now_ms(),
                              admin_scope=admin_scope)
        with self._write() as s:
            s.add(row)
            s.flush()
            return subscription_of(row)

    def list_subscriptions(self, department: str | None = None) -> list[Subscription]:
        """All subscriptions (admin) or one department's, oldest first."""
        q = select(SubscriptionRow).order_by(SubscriptionRow.id)
        if department is not None:
            q = q.where(SubscriptionRow.department == department)
        with self._read() as s:
            return [subscription_of(r) for r in s.scalars(q)]

    def get_subscription(self, subscription_id: str, department: str | None = None) -> Subscription | None:
        pk = int_id(subscription_id)
        if pk is None:
            return None
        with self._read() as s:
            row = s.get(SubscriptionRow, pk)
            if row is None or (department is not None and row.department != department):
                return None
            return subscription_of(row)

    def delete_subscription(self, subscription_id: str, department: str | None = None) -> bool:
        """Deletes it (only if it belongs to ``department``, when given); False when not found."""
        return self._delete_owned(SubscriptionRow, subscription_id, department)

    # -- silences -------------------------------------------------------------------------

    def create_silence(self, *, site: str, until: datetime, reason: str = "", metric: str | None = None,
                       department: str | None = None, created_by: str = "admin") -> Silence:
        """Holds back ``department``'s notifications (all departments' when None) for ``site``
        (and only ``metric``, when given) until ``until``. Raises ValueError if ``until`` has passed."""
        until_ms = dt_to_ms(until)
        now = now_ms()
        if until_ms <= now:
            raise ValueError(f"until={until.isoformat()!r}: a silence must end in the future")
        row = SilenceRow(department=department, created_by=created_by, site=site, metric=metric,
                         until_ms=until_ms, reason=reason, created_ms=now)
        with self._write() as s:
            s.add(row)
            s.flush()
            return silence_of(row)

    def list_silences(self, department: str | None = None,
                      active_at: datetime | None = None) -> list[Silence]:
        """Silences still in force at ``active_at`` (now by default), oldest first; a department
        sees its own and the district-wide ones (department None)."""
        at = now_ms() if active_at is None else dt_to_ms(active_at)
        q = select(SilenceRow).where(SilenceRow.until_ms > at).order_by(SilenceRow.id)
        if department is not None:
            q = q.where((SilenceRow.department == department) | SilenceRow.department.is_(None))
        with self._read() as s:
            return [silence_of(r) for r in s.scalars(q)]

    def delete_silence(self, silence_id: str, department: str | None = None) -> bool:
        """Ends a silence (a department may end only its own); False when not found."""
        return self._delete_owned(SilenceRow, silence_id, department)

    def _delete_owned(self, model: type[SubscriptionRow] | type[SilenceRow], item_id: str,
                      department: str | None) -> bool:
        """Deletes row ``item_id`` of ``model`` (only if ``department`` owns it, when given)."""
        pk = int_id(item_id)
        if pk is None:
            return False
        q = delete(model).where(model.id == pk)
        if department is not None:
            q = q.where(model.department == department)
        with self._write() as s:
            return bool(s.execute(q).rowcount)  # type: ignore[attr-defined]

    def silence_for(self, department: str, site: str, metric: str,
                    at_ms: int | None = None) -> Silence | None:
        """The silence holding back ``department``'s notification about (site, metric), if any."""
        at = now_ms() if at_ms is None else at_ms
        q = (select(SilenceRow)
             .where(SilenceRow.site == site, SilenceRow.until_ms > at,
                    (SilenceRow.department == department) | SilenceRow.department.is_(None),
                    (SilenceRow.metric == metric) | SilenceRow.metric.is_(None))
             .order_by(SilenceRow.id).limit(1))
        with self._read() as s:
            row = s.scalars(q).first()
            return None if row is None else silence_of(row)

    def purge_silences(self, ended_before_ms: int) -> int:
        """Deletes silences that ended before ``ended_before_ms``; returns how many."""
        with self._write() as s:
            return int(s.execute(delete(SilenceRow).where(SilenceRow.until_ms < ended_before_ms))
                       .rowcount)  # type: ignore[attr-defined]
