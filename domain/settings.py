"""The one Settings object: every ``SAFEWATCH_*`` variable of the contract (and ``.env``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.durations import parse_duration

ROLES = ("ingest", "api", "delivery", "scheduler")  # SAFEWATCH_ROLES (contract section 12)
COOKIE_SECURE = ("auto", "true", "false")  # SAFEWATCH_COOKIE_SECURE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAFEWATCH_", env_file=".env", extra="ignore")

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str | None = None  # default: the config's district
    influx_token: str | None = None
    state_url: str = "sqlite:///./var/state.db"
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    admin_token: str | None = None
    data_dir: Path = Path("./var")
    # Where notifications may go (contract section 6): comma-separated hosts and CIDR ranges.
    webhook_allow: str = ""
    webhook_deny: str = ""
    # People (contract section 9): an idle signed-in session ends after this (a duration: 12h).
    session_idle: str = "12h"
    # The session cookie's Secure flag: auto (when the request's scheme is https, as uvicorn sees
    # it: behind a TLS proxy, only with its proxy headers trusted), true or false (docs/people.md).
    cookie_secure: str = "auto"
    # Retention (issue 10): raw readings, and the hourly rollup (durations; 0 keeps forever).
    retention_raw: str = "90d"
    retention_rollup: str = "1825d"
    # Several processes (contract section 12).
    partitions: int = Field(default=1, ge=1, le=1024)
    lease_ttl: str = "10s"
    roles: str = "ingest,api,delivery,scheduler"

    @field_validator("lease_ttl")
    @classmethod
    def _check_lease_ttl(cls, v: str) -> str:
        return _duration_at_least("SAFEWATCH_LEASE_TTL", v, 0.5, "at least 500ms (heartbeats run every quarter of it)")

    @field_validator("session_idle")
    @classmethod
    def _check_session_idle(cls, v: str) -> str:
        return _duration_at_least("SAFEWATCH_SESSION_IDLE", v, 1.0, "at least 1s")

    @field_validator("cookie_secure", mode="before")
    @classmethod
    def _check_cookie_secure(cls, v: object) -> str:
        value = str(v).strip().lower()
        if value not in COOKIE_SECURE:
            raise ValueError(f"SAFEWATCH_COOKIE_SECURE={v!r}: expected one of {', '.join(COOKIE_SECURE)}")
        return value

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, v: str) -> str:
        roles = [r.strip() for r in v.split(",") if r.strip()]
        unknown = [r for r in roles if r not in ROLES]
        if not roles or unknown:
            raise ValueError(f"SAFEWATCH_ROLES={v!r}: expected a comma-separated subset of {','.join(ROLES)}")
        return ",".join(dict.fromkeys(roles))

    @property
    def lease_ttl_s(self) -> float:
        return parse_duration(self.lease_ttl)

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(self.roles.split(","))

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, v: str) -> str:
        u = urlsplit(v)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ValueError(f"SAFEWATCH_MQTT_URL={v!r}: expected mqtt://[user:pass@]host[:port] or mqtts://...")
        return v

    @field_validator("influx_url")
    @classmethod
    def _check_influx_url(cls, v: str) -> str:
        u = urlsplit(v)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"SAFEWATCH_INFLUX_URL={v!r}: expected http(s)://host[:port]")
        return v.rstrip("/")

    def influx_database(self, district: str) -> str:
        return self.influx_db or district

    def influx_credentials(self) -> tuple[str, str] | None:
        """(user, password) for the v1 API: ``user:password`` on 1.x, a bare 2.x/3.x token as password."""
        if not self.influx_token:
            return None
        user, sep, password = self.influx_token.partition(":")
        return (user, password) if sep else ("safewatch", self.influx_token)


def _duration_at_least(option: str, v: str, minimum_s: float, why: str) -> str:
    """``v`` if it is a duration of at least ``minimum_s``; ValueError naming the option otherwise."""
    try:
        seconds = parse_duration(v)
    except ValueError as exc:
        raise ValueError(f"{option}={v!r}: {exc}") from None
    if seconds < minimum_s:
        raise ValueError(f"{option}={v!r}: {why}")
    return v


def mqtt_parts(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """(host, port, tls, username, password) from ``SAFEWATCH_MQTT_URL``."""
    u = urlsplit(url)
    tls = u.scheme == "mqtts"
    port = u.port or (8883 if tls else 1883)
    user = unquote(u.username) if u.username else None
    password = unquote(u.password) if u.password else None
    return u.hostname or "127.0.0.1", port, tls, user, password
