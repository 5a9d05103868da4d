"""Accounts, sign-in sessions, the sign-in lock and role-bearing tokens: the ``PeopleStore`` mixin.

Passwords are hashed with argon2id (``argon2-cffi``, its RFC 9106 low-memory defaults: 64 MiB,
3 passes) and never leave this module in clear. A session cookie is a random token of which
only the SHA-256 is stored, like department tokens. Whether a session still counts is decided
against the database at every request, so a sign-out, a disabled user or a new password ends
it at once in every process.
"""

from __future__ import annotations

import hmac
import math
import os
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update

from store.state.access import TOKEN_BYTES, add_token, live_token, token_hash
from store.state.models_people import SessionRow, SignInFailureRow, UserRow
from store.state.people_rules import ROLES, TOKEN_ROLES, check_password, check_username
from store.state.session import SessionSource, now_ms

LOCK_FAILURES = 5
LOCK_WINDOW_MS = 10 * 60_000
LOCK_MS = 15 * 60_000
KEEP_ENDED_MS = 30 * 86_400_000  # longer than any sensible SAFEWATCH_SESSION_IDLE
TOUCH_EVERY_MS = 30_000  # last_seen is written at most this often per session (idle expiry is hours)

_hasher = PasswordHasher()
# Each hash or check takes 64 MiB and all cores for a while: a burst of sign-ins queues here
# instead of taking the API's whole thread pool (and 40 x 64 MiB) at once.
_HASHING = threading.BoundedSemaphore(max(1, min(4, os.cpu_count() or 1)))
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: str
    department: str | None
    sites: tuple[str, ...]
    disabled: bool
    created_ms: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session and its (current) user."""

    session_id: str
    csrf_token: str
    user: User


@dataclass(frozen=True, slots=True)
class SignInResult:
    """Exactly one of: ``user`` (the password matched), ``retry_after_s`` (the name is locked),
    neither (wrong name, wrong password or a disabled account: one answer for all)."""

    user: User | None = None
    retry_after_s: int | None = None
    reason: str = ""  # for the audit trail only: "unknown user", "wrong password", "disabled", "locked"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    department: str
    role: str
    expires_ms: int | None


class UserExists(ValueError):
    pass


def _user(row: UserRow) -> User:
    return User(row.id, row.username, row.role, row.department, tuple(row.sites or ()), bool(row.disabled),
                row.created_ms, row.updated_ms)


class PeopleStore(SessionSource):
    # -- accounts -------------------------------------------------------------------------

    def create_user(self, *, username: str, role: str, password: str, department: str | None = None,
                    sites: tuple[str, ...] | list[str] = ()) -> User:
        """Raises ValueError for a bad name, role or password and UserExists for a taken name.
        Checking ``department``/``sites`` against the district is the caller's (it has the config)."""
        check_username(username)
        if role not in ROLES:
            raise ValueError(f"role={role!r}: expected one of {', '.join(ROLES)}")
        check_password(password)
        with _HASHING:
            digest = _hasher.hash(password)
        now = now_ms()
        with self._write() as s:
            if s.scalars(select(UserRow.id).where(UserRow.username == username)).first() is not None:
                raise UserExists(f"username={username!r}: an account of that name exists")
            row = UserRow(username=username, role=role, department=department, sites=list(sites),
                          password_hash=digest, disabled=False, created_ms=now, updated_ms=now)
            s.add(row)
            s.flush()
            return _user(row)

    def get_user(self, username: str) -> User | None:
        with self._read() as s:
            row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
            return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        with self._read() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.username))]

    def update_user(self, username: str, *, role: str | None = None, department: str | None = None,
                    sites: tuple[str, ...] | list[str] | None = None, disabled: bool | None = None,
                    password: str | None = None, set_department: bool = False) -> User | None:
        """Changes what is given (``department`` only with ``set_department``, as None is a value);
        None when there is no such user. Disabling the user or changing the password ends all its
        sessions in the same transaction."""
        if role is not None and role not in ROLES:
            raise ValueError(f"role={role!r}: expected one of {', '.join(ROLES)}")
        digest = None
        if password is not None:
            check_password(password)
            with _HASHING:
                digest = _hasher.hash(password)
        now = now_ms()
        with self._write() as s:
            row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
            if row is None:
                return None
            if role is not None:
                row.role = role
            if set_department:
                row.department = department
            if sites is not None:
                row.sites = list(sites)
            if disabled is not None:
                row.disabled = disabled
            if digest is not None:
                row.password_hash = digest
            row.updated_ms = now
            if disabled or digest is not None:
                s.execute(update(SessionRow).where(SessionRow.user_id == row.id, SessionRow.revoked_ms.is_(None))
                          .values(revoked_ms=now))
            return _user(row)

    # -- signing in -----------------------------------------------------------------------

    def lock_retry_after(self, username: str, at_ms: int | None = None) -> int | None:
        """Seconds until the name may try again, or None when it is not locked: locked for
        LOCK_MS after the LOCK_FAILURES-th failure within LOCK_WINDOW_MS."""
        now = now_ms() if at_ms is None else at_ms
        with self._read() as s:
            times = list(s.scalars(select(SignInFailureRow.at_ms)
                                   .where(SignInFailureRow.username == username[:128],
                                          SignInFailureRow.at_ms > now - LOCK_WINDOW_MS - LOCK_MS)
                                   .order_by(SignInFailureRow.at_ms)))
        until = 0
        for i in range(len(times) - LOCK_FAILURES + 1):
            last = times[i + LOCK_FAILURES - 1]
            if last - times[i] <= LOCK_WINDOW_MS:
                until = max(until, last + LOCK_MS)
        return math.ceil((until - now) / 1000) if until > now else None

    def sign_in(self, username: str, password: str, ip: str = "") -> SignInResult:
        """Checks the name and password, honouring and counting towards the per-name lock."""
        retry = self.lock_retry_after(username)
        if retry is not None:
            return SignInResult(retry_after_s=retry, reason="locked")
        with self._read() as s:
            row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
            user, digest = (None, _DUMMY_HASH) if row is None else (_user(row), row.password_hash)
        try:
            with _HASHING:
                ok = _hasher.verify(digest, password) and user is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if ok and user is not None and not user.disabled:
            if _hasher.check_needs_rehash(digest):
                self._rehash(user.id, password)
            with self._write() as s:
                s.execute(delete(SignInFailureRow).where(SignInFailureRow.username == username[:128]))
            return SignInResult(user=user)
        now = now_ms()
        with self._write() as s:
            # failures older than the lock can reach no longer count: the table stays small
            s.execute(delete(SignInFailureRow).where(SignInFailureRow.username == username[:128],
                                                     SignInFailureRow.at_ms < now - LOCK_WINDOW_MS - LOCK_MS))
            s.add(SignInFailureRow(username=username[:128], at_ms=now, ip=ip[:64]))
        reason = "unknown user" if user is None else "disabled" if ok else "wrong password"
        return SignInResult(reason=reason)

    def _rehash(self, user_id: int, password: str) -> None:
        with self._write() as s:
            s.execute(update(UserRow).where(UserRow.id == user_id).values(password_hash=_hasher.hash(password)))

    # -- sessions -------------------------------------------------------------------------

    def create_session(self, user: User, ip: str = "") -> tuple[str, SignedIn]:
        """A new session: (the cookie value, shown this once, and the session)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        csrf = secrets.token_urlsafe(24)
        now = now_ms()
        with self._write() as s:
            # the user's ended or long-idle sessions are of no more use: one signs in, old ones go
            s.execute(delete(SessionRow).where(SessionRow.user_id == user.id,
                                               (SessionRow.revoked_ms < now - KEEP_ENDED_MS)
                                               | (SessionRow.last_seen_ms < now - KEEP_ENDED_MS)))
            row = SessionRow(token_hash=token_hash(token), user_id=user.id, csrf_token=csrf, created_ms=now,
                             last_seen_ms=now, ip=ip[:64])
            s.add(row)
            s.flush()
            return token, SignedIn(str(row.id), csrf, user)

    def session_for(self, token: str, idle_ms: int) -> SignedIn | None:
        """The live session of a cookie value: not revoked, used within ``idle_ms``, its user
        enabled; the user as it is now (a role change applies at once). Refreshes last use."""
        if not token:
            return None
        digest = token_hash(token)
        now = now_ms()
        with self._read() as s:
            found = s.execute(select(SessionRow, UserRow).join(UserRow, SessionRow.user_id == UserRow.id)
                              .where(SessionRow.token_hash == digest, SessionRow.revoked_ms.is_(None))).first()
            if found is None:
                return None
            session, user = found
            if not hmac.compare_digest(session.token_hash, digest) or user.disabled:
                return None
            if now - session.last_seen_ms > idle_ms:
                return None
            signed = SignedIn(str(session.id), session.csrf_token, _user(user))
            stale = now - session.last_seen_ms > TOUCH_EVERY_MS
        if stale:
            with self._write() as s:
                s.execute(update(SessionRow).where(SessionRow.id == int(signed.session_id))
                          .values(last_seen_ms=now))
        return signed

    def end_session(self, session_id: str) -> bool:
        with self._write() as s:
            res = s.execute(update(SessionRow).where(SessionRow.id == int(session_id),
                                                     SessionRow.revoked_ms.is_(None)).values(revoked_ms=now_ms()))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    # -- tokens with a role ---------------------------------------------------------------

    def issue_token(self, department: str, role: str = "operator", expires_ms: int | None = None) -> str:
        """A department token with a role (viewer or operator) and an optional expiry (epoch ms)."""
        if role not in TOKEN_ROLES:
            raise ValueError(f"role={role!r}: a token is one of {', '.join(TOKEN_ROLES)}")
        with self._write() as s:
            return add_token(s, department, role, expires_ms)

    def token_info(self, token: str) -> TokenInfo | None:
        """A live (unrevoked) token's department, role and expiry, expired or not; None if unknown."""
        with self._read() as s:
            row = live_token(s, token)
            if row is None:
                return None
            return TokenInfo(row.department, row.role or "operator", row.expires_ms)

