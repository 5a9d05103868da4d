"""Accounts, sign-in sessions, the sign-in lock and role-bearing tokens: the ``PeopleStore`` mixin.

Passwords are hashed with argon2id (``argon2-cffi``, its RFC 9106 low-memory defaults: 64 MiB,
3 passes) and never leave this module in clear. A session cookie is a random token of which
only the SHA-256 is stored, like department tokens. Whether a session still counts is decided
against the database at every request, so a sign-out, a disabled user or a new password ends
it at once in every process.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import secrets
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from domain.clock import now_ms
from store.state.access import TOKEN_BYTES, add_token, live_token, token_hash
from store.state.models_people import AuditRow, SessionRow, SignInFailureRow, UserRow
from store.state.people_rules import ROLES, TOKEN_ROLES, check_password, check_username
from store.state.session import SessionSource

LOCK_FAILURES = 5
LOCK_WINDOW_MS = 10 * 60_000
LOCK_MS = 15 * 60_000
KEEP_ENDED_MS = 30 * 86_400_000  # longer than any sensible SAFEWATCH_SESSION_IDLE
TOUCH_EVERY_MS = 30_000  # last_seen is written at most this often per session (idle expiry is hours)

SIGN_IN_FAILED = "session.sign_in_failed"  # the audit action of a refused sign-in
_SIGN_IN_LOCK = 0x5AFE_5160 << 32  # pg advisory lock keys "sign-in of a name": this | crc32(name)

_hasher = PasswordHasher()
_T = TypeVar("_T")


class Hashing:
    """The process's password hashing, on ``slots`` threads of its own.

    Each hash or check takes 64 MiB and a core for a while. Running them on the API's shared
    thread pool let a burst of sign-ins hold every one of its threads while they queued for a
    core, and every other request (the admin's included) waited behind them. Here they queue on
    threads nobody else needs; an async handler waits for its result without holding any thread,
    and ``reserve`` lets a sign-in be refused at once when too many are already waiting.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._pool = ThreadPoolExecutor(slots, thread_name_prefix="argon2")
        self._lock = threading.Lock()
        self._in_flight = 0  # reserved: queued or running

    def reserve(self, waiting_at_most: int) -> bool:
        """Takes a place unless ``slots`` are busy and ``waiting_at_most`` more wait already; a
        True must be followed by ``release``."""
        with self._lock:
            if self._in_flight >= self.slots + waiting_at_most:
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def run(self, fn: Callable[..., _T], *args: object) -> _T:
        """Runs ``fn`` on a hashing thread, blocking the caller (sync code: the CLI, admin routes)."""
        return self._pool.submit(fn, *args).result()

    async def run_async(self, fn: Callable[..., _T], *args: object) -> _T:
        """Runs ``fn`` on a hashing thread; the event loop, not a thread, waits for it."""
        return await asyncio.wrap_future(self._pool.submit(fn, *args))


HASHING = Hashing(max(1, min(4, os.cpu_count() or 1)))
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _hash(password: str) -> str:
    return _hasher.hash(password)


def password_matches(digest: str, password: str) -> bool:
    """The argon2 check (slow: run it on ``HASHING``); False for a malformed hash too."""
    try:
        return bool(_hasher.verify(digest, password))
    except (VerificationError, InvalidHashError):
        return False


def _lock_name(s: Session, username: str) -> None:
    """Serialises sign-ins of one name across processes for the rest of the transaction:
    counting the failures and recording this attempt must be one step, or parallel guesses all
    read "fewer than five" and all get checked. (SQLite: BEGIN IMMEDIATE already serialises.)"""
    if s.get_bind().dialect.name == "postgresql":
        key = _SIGN_IN_LOCK | zlib.crc32(username.encode("utf-8"))
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def _locked_until(times: list[int]) -> tuple[int, int]:
    """(until, since) in ms of the latest lock made by failure ``times`` (ascending), or (0, 0):
    locked for LOCK_MS after the LOCK_FAILURES-th failure within LOCK_WINDOW_MS."""
    until = since = 0
    for i in range(len(times) - LOCK_FAILURES + 1):
        last = times[i + LOCK_FAILURES - 1]
        if last - times[i] <= LOCK_WINDOW_MS and last + LOCK_MS > until:
            until, since = last + LOCK_MS, last
    return until, since


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
class SignInAttempt:
    """The first half of a sign-in: the name is locked (``retry_after_s``, since ``locked_since_ms``),
    or the attempt is recorded as a failure (``failure_id``) until its password is found right."""

    username: str
    retry_after_s: int | None = None
    locked_since_ms: int = 0
    failure_id: int | None = None
    user: User | None = None
    digest: str | None = None  # the user's hash; None for an unknown name

    @property
    def check_against(self) -> str:
        """The hash to verify the password against: the user's, or a dummy one for an unknown
        name, so a wrong name costs as long as a wrong password."""
        return _DUMMY_HASH if self.digest is None else self.digest


@dataclass(frozen=True, slots=True)
class TokenInfo:
    department: str
    role: str
    expires_ms: int | None


class UserExists(ValueError):
    pass


def _attempts(detail: str) -> int:
    """The count in an aggregated ``locked: N attempts, ...`` detail (1 if it has none)."""
    digits = "".join(c for c in detail.removeprefix("locked:").split("attempt")[0] if c.isdigit())
    return int(digits) if digits else 1


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
        digest = HASHING.run(_hash, password)
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
            digest = HASHING.run(_hash, password)
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
            until, _ = _locked_until(self._failure_times(s, username[:128], now))
        return math.ceil((until - now) / 1000) if until > now else None

    @staticmethod
    def _failure_times(s: Session, name: str, now: int) -> list[int]:
        return list(s.scalars(select(SignInFailureRow.at_ms)
                              .where(SignInFailureRow.username == name,
                                     SignInFailureRow.at_ms > now - LOCK_WINDOW_MS - LOCK_MS)
                              .order_by(SignInFailureRow.at_ms)))

    def sign_in(self, username: str, password: str, ip: str = "") -> SignInResult:
        """Checks the name and password, honouring and counting towards the per-name lock
        (blocking: the API's async handler runs the halves itself, see ``begin_sign_in``)."""
        attempt = self.begin_sign_in(username, ip)
        if attempt.retry_after_s is not None:
            return SignInResult(retry_after_s=attempt.retry_after_s, reason="locked")
        return self.finish_sign_in(attempt, password, HASHING.run(password_matches, attempt.check_against, password))

    def begin_sign_in(self, username: str, ip: str = "") -> SignInAttempt:
        """Refuses a locked name, or records this attempt as a failure before its password is
        checked, in one transaction per name. Parallel wrong guesses thus count one another: the
        sixth of forty sent at once finds five failures and is refused without a check, instead
        of all forty being checked against a count none of them has added to yet. A right
        password then takes its failure back (``finish_sign_in``)."""
        name = username[:128]
        now = now_ms()
        with self._write() as s:
            _lock_name(s, name)
            until, since = _locked_until(self._failure_times(s, name, now))
            if until > now:
                return SignInAttempt(username, retry_after_s=math.ceil((until - now) / 1000), locked_since_ms=since)
            # failures older than the lock can reach no longer count: the table stays small
            s.execute(delete(SignInFailureRow).where(SignInFailureRow.username == name,
                                                     SignInFailureRow.at_ms < now - LOCK_WINDOW_MS - LOCK_MS))
            failure = SignInFailureRow(username=name, at_ms=now, ip=ip[:64])
            s.add(failure)
            s.flush()
            row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
            if row is None:
                return SignInAttempt(username, failure_id=failure.id)
            return SignInAttempt(username, failure_id=failure.id, user=_user(row), digest=row.password_hash)

    def finish_sign_in(self, attempt: SignInAttempt, password: str, matched: bool) -> SignInResult:
        """The second half, once ``password_matches(attempt.digest, password)`` said ``matched``:
        a right password of an enabled user clears the name's failures (its own included);
        anything else leaves the failure recorded by ``begin_sign_in`` standing."""
        user = attempt.user
        ok = matched and user is not None
        name = attempt.username[:128]
        if ok and user is not None and not user.disabled:
            if attempt.digest is not None and _hasher.check_needs_rehash(attempt.digest):
                self._rehash(user.id, password)
            with self._write() as s:
                s.execute(delete(SignInFailureRow).where(SignInFailureRow.username == name))
            return SignInResult(user=user)
        with self._write() as s:
            if attempt.failure_id is not None and s.get(SignInFailureRow, attempt.failure_id) is None:
                # a right password in parallel cleared the name's failures, this one's too: it stands
                s.add(SignInFailureRow(username=name, at_ms=now_ms(), ip=""))
        reason = "unknown user" if user is None else "disabled" if ok else "wrong password"
        return SignInResult(reason=reason)

    def record_locked_attempt(self, username: str, locked_since_ms: int, ip: str = "") -> None:
        """Audits an attempt on a locked name as one row per name and lock, counting the attempts
        in its detail (``locked: 3 attempts``): such an attempt costs no hash, so one row each
        would let anyone grow the audit trail without bound for next to nothing."""
        name = username[:128]
        with self._write() as s:
            _lock_name(s, name)
            row = s.scalars(select(AuditRow)
                            .where(AuditRow.actor == name, AuditRow.action == SIGN_IN_FAILED,
                                   AuditRow.at_ms >= locked_since_ms, AuditRow.detail.startswith("locked"))
                            .order_by(AuditRow.id.desc()).limit(1)).first()
            if row is None:
                s.add(AuditRow(at_ms=now_ms(), actor=name, role=None, department=None, action=SIGN_IN_FAILED,
                               target=f"user:{username}"[:256], detail="locked: 1 attempt", ip=ip[:64]))
                return
            # ``ip`` stays the first attempt's; the detail names the latest one's
            row.detail = f"locked: {_attempts(row.detail) + 1} attempts, the last from {ip or '?'}"[:2000]

    def _rehash(self, user_id: int, password: str) -> None:
        digest = HASHING.run(_hash, password)
        with self._write() as s:
            s.execute(update(UserRow).where(UserRow.id == user_id).values(password_hash=digest))

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

    def session_for(self, token: str, idle_ms: int, touch: bool = True) -> SignedIn | None:
        """The live session of a cookie value: not revoked, used within ``idle_ms``, its user
        enabled; the user as it is now (a role change applies at once). Refreshes last use
        unless ``touch`` is False (a re-check of a long request, which is not new use)."""
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
        if stale and touch:
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

