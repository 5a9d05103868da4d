"""Request and response bodies (contract section 5); every time carries an offset.

Times are shown in the district's timezone (``2025-11-28T10:00:00+08:00``); the ``of``
constructors take the district's tz so no handler converts times by hand.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from domain.alerts import Alert, AlertEvent
from domain.config import Department, Site
from domain.families import FAMILY_NAMES
from domain.severity import SEVERITY_NAMES

SeverityName = Literal["blue", "yellow", "orange", "red"]
FamilyName = Literal["gas_station", "crowd_venue", "underground"]
StateName = Literal["open", "acknowledged", "resolved", "closed"]
assert tuple(SeverityName.__args__) == SEVERITY_NAMES  # type: ignore[attr-defined]
assert tuple(FamilyName.__args__) == FAMILY_NAMES  # type: ignore[attr-defined]


def local(dt: datetime, tz: tzinfo) -> datetime:
    return dt.astimezone(tz)


# Milliseconds and an offset, as in webhook bodies: "2025-01-01T08:00:00.000+08:00".
Time = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(timespec="milliseconds"), return_type=str),
                 WithJsonSchema({"type": "string", "format": "date-time"})]


class StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    detail: str


class ValidationErrorOut(BaseModel):
    detail: str
    errors: list[dict[str, Any]] = []


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    components: dict[str, Any]


# -- tokens ----------------------------------------------------------------------------------------

class TokenIn(StrictIn):
    department: str = Field(min_length=1, max_length=64)


class TokenOut(BaseModel):
    token: str
    department: str


class RevokeIn(StrictIn):
    token: str = Field(min_length=1, max_length=512)


class RevokedOut(BaseModel):
    department: str | None = None
    revoked: int


# -- registry --------------------------------------------------------------------------------------

class DepartmentOut(BaseModel):
    id: str
    name: str
    kind: str

    @classmethod
    def of(cls, d: Department) -> DepartmentOut:
        return cls(id=d.id, name=d.name, kind=d.kind)


class LocationOut(BaseModel):
    lat: float
    lon: float


class SiteOut(BaseModel):
    id: str
    name: str
    family: FamilyName
    street: str
    sector: str
    street_office: str
    kind: str | None = None
    address: str | None = None
    location: LocationOut | None = None
    capacity: int | None = None
    area_m2: float | None = None

    @classmethod
    def fields_of(cls, s: Site, street_office: str) -> dict[str, Any]:
        loc = None if s.location is None else LocationOut(lat=s.location.lat, lon=s.location.lon)
        return dict(id=s.id, name=s.name, family=s.family, street=s.street, sector=s.sector,
                    street_office=street_office, kind=s.kind, address=s.address, location=loc,
                    capacity=s.capacity, area_m2=s.area_m2)


class LatestOut(BaseModel):
    value: float
    time: Time
    device: str


# -- alerts ----------------------------------------------------------------------------------------

class EventOut(BaseModel):
    id: int
    type: str
    at: Time
    severity: SeverityName
    value: float | None
    by: str | None
    note: str | None

    @classmethod
    def of(cls, e: AlertEvent, tz: tzinfo) -> EventOut:
        return cls(id=e.id, type=e.type.value, at=local(e.at, tz), severity=e.severity.label,  # type: ignore[arg-type]
                   value=e.value, by=e.by, note=e.note)


class AlertOut(BaseModel):
    id: str
    rule: str
    kind: str
    site: str
    family: str
    device: str
    metric: str
    severity: SeverityName
    state: StateName
    value: float | None
    threshold: float | None
    message: str
    started_at: Time
    updated_at: Time
    resolved_at: Time | None
    closed_at: Time | None
    departments: list[str]
    street: str = ""
    flapping: bool = False
    events: list[EventOut] = Field(
        default_factory=list, description="Oldest first; lists leave them out, GET /alerts/{id} has them")

    @classmethod
    def of(cls, a: Alert, tz: tzinfo) -> AlertOut:
        return cls(
            id=a.id, rule=a.rule, kind=a.kind, site=a.site, family=a.family, device=a.device, metric=a.metric,
            severity=a.severity.label, state=a.state.value,  # type: ignore[arg-type]
            value=a.value, threshold=a.threshold, message=a.message,
            started_at=local(a.started_at, tz), updated_at=local(a.updated_at, tz),
            resolved_at=None if a.resolved_at is None else local(a.resolved_at, tz),
            closed_at=None if a.closed_at is None else local(a.closed_at, tz),
            departments=list(a.departments), street=a.street, flapping=a.flapping,
            events=[EventOut.of(e, tz) for e in a.events],
        )


class SiteDetailOut(SiteOut):
    latest: dict[str, LatestOut] = Field(description="metric → newest reading")
    open_alerts: list[AlertOut] = Field(description="the site's alerts not yet closed, visible to the caller")


class NoteIn(StrictIn):
    note: str | None = Field(default=None, max_length=4000)


# -- history and trend -----------------------------------------------------------------------------

class PointOut(BaseModel):
    time: Time
    value: float | None


class HistoryOut(BaseModel):
    site: str
    metric: str
    agg: Literal["mean", "max", "min", "last", "count", "p95"]
    every: str
    start: Time
    end: Time
    source: Literal["raw", "downsampled_1h"] = Field(
        description="raw points, or the hourly rollup kept by continuous queries (long ranges)")
    points: list[PointOut]


class ForecastOut(BaseModel):
    rule: str
    level: SeverityName
    threshold: float
    eta: Time | None = Field(description="when the fitted line reaches the level; null if it never does")


class TrendOut(BaseModel):
    site: str
    metric: str
    window: str
    points: int = Field(description="readings the fit used")
    slope_per_min: float | None = Field(
        description="least-squares slope in units per minute; null with fewer than 2 points")
    last: float | None
    last_time: Time | None
    forecast: list[ForecastOut]


# -- subscriptions and silences --------------------------------------------------------------------

class SubscriptionIn(StrictIn):
    channel: Literal["webhook", "mqtt"] = Field(
        default="webhook", description="webhook: POST to an http(s) url; mqtt: publish to the topic in url")
    url: str = Field(min_length=1, max_length=2048)
    secret: str = Field(default="", max_length=512)
    min_severity: SeverityName = "blue"
    families: list[FamilyName] = Field(default_factory=list, max_length=16)
    streets: list[str] = Field(default_factory=list, max_length=256)
    sites: list[str] = Field(default_factory=list, max_length=1024)
    department: str | None = Field(default=None, description="admin only: whose subscription this is")

    @model_validator(mode="after")
    def _check_target(self) -> SubscriptionIn:
        check = _check_webhook_url if self.channel == "webhook" else _check_topic
        check(self.url)
        return self


def _check_webhook_url(v: str) -> None:
    if any(c.isspace() or ord(c) < 32 for c in v):
        raise ValueError(f"url {v!r} contains whitespace or control characters")
    try:
        u = urlsplit(v)
        u.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as err:
        raise ValueError(f"url {v!r} is malformed ({err})") from None
    if u.scheme not in ("http", "https"):
        raise ValueError(f"url {v!r}: webhooks are delivered by HTTP POST, so the scheme must be "
                         f"http or https, not {u.scheme or 'missing'!r}")
    if not u.hostname:
        raise ValueError(f"url {v!r} has no host")


def _check_topic(v: str) -> None:
    if "+" in v or "#" in v or "\x00" in v or v.startswith("$"):
        raise ValueError(f"url {v!r}: an MQTT topic to publish to has no wildcards (+ #), NUL or leading $")


class SubscriptionOut(BaseModel):
    id: str
    department: str
    channel: str
    url: str
    has_secret: bool
    min_severity: SeverityName
    families: list[str]
    streets: list[str]
    sites: list[str]
    created_at: Time


class SilenceIn(StrictIn):
    site: str = Field(min_length=1, max_length=64)
    metric: str | None = Field(default=None, description="null: every metric of the site")
    until: AwareDatetime
    reason: str = Field(default="", max_length=2000)
    department: str | None = Field(
        default=None, description="admin only: whose notifications to hold back (null: everyone's)")


class SilenceOut(BaseModel):
    id: str
    site: str
    metric: str | None
    until: Time
    reason: str
    department: str | None
    created_by: str
    created_at: Time
