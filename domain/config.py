"""The district config (contract section 2): typed models, loading and up-front validation.

Validation runs in two passes: pydantic checks shapes, types and unknown keys; then
``_check_references`` checks what pydantic cannot see: ids that must exist, duplicates,
metrics a family lacks and per-family requirements. Every problem is reported with the
path inside the file (``sites[3].capacity``) so an operator can fix it without guessing.
"""

from __future__ import annotations

import re
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from domain.durations import parse_duration
from domain.severity import Severity


class ConfigError(Exception):
    """A config the loader refuses: ``problems`` holds (path, message) pairs, first one shown."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        path, message = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        where = f"{source}: {path}: " if path else f"{source}: "
        super().__init__(f"{where}{message}{more}")


def _duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"malformed duration {value!r}")
    if isinstance(value, int | float):
        return float(value)  # plain numbers are seconds, as in Prometheus' YAML
    return parse_duration(value)


def _severity(value: Any) -> Severity:
    if isinstance(value, Severity):
        return value
    if not isinstance(value, str):
        raise ValueError(f"severity must be a name, got {value!r}")
    return Severity.parse(value)


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]
SeverityField = Annotated[Severity, BeforeValidator(_severity), PlainSerializer(lambda s: s.label)]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
SiteId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
NOTIFY_PLACEHOLDERS = ("sector", "street")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Department(_Strict):
    id: Id
    name: str
    kind: Literal["comprehensive", "sector", "territorial"]


class Street(_Strict):
    id: Id
    name: str
    office: str  # the territorial department (街道办事处) answering for the street


class Location(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Site(_Strict):
    id: SiteId
    name: str
    family: Literal["gas_station", "crowd_venue", "underground"]
    street: str
    sector: str
    kind: str | None = None  # what sort of place (mall, theatre, shelter, ...); informational
    address: str | None = None
    location: Location | None = None
    capacity: int | None = Field(default=None, gt=0)
    area_m2: float | None = Field(default=None, gt=0)


_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class Schedule(_Strict):
    between: str

    @field_validator("between")
    @classmethod
    def _check_between(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"malformed schedule {v!r} (expected HH:MM-HH:MM, e.g. 23:00-06:00)")
        return v

    @cached_property
    def minutes(self) -> tuple[int, int]:
        m = _HHMM.match(self.between)
        assert m is not None
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        return h1 * 60 + m1, h2 * 60 + m2

    def active_at(self, minute_of_day: int) -> bool:
        """True inside the window; a window whose end is before its start spans midnight."""
        start, end = self.minutes
        if start <= end:
            return start <= minute_of_day < end
        return minute_of_day >= start or minute_of_day < end


class ThresholdRule(_Strict):
    id: Id
    kind: Literal["threshold"]
    family: str
    metric: str
    direction: Literal["above", "below"] = "above"
    levels: dict[str, float] = Field(min_length=1)
    hysteresis: float = Field(default=0.0, ge=0)
    for_: Duration = Field(default=0.0, alias="for")
    schedule: Schedule | None = None

    @field_validator("levels")
    @classmethod
    def _check_levels(cls, v: dict[str, float]) -> dict[str, float]:
        for name in v:
            Severity.parse(name)
        return v

    @model_validator(mode="after")
    def _check_order(self) -> ThresholdRule:
        bounds = [b for _, b in self.ordered_levels]
        rising = self.direction == "above"
        for lower, higher in pairwise(bounds):
            if (rising and not higher > lower) or (not rising and not higher < lower):
                order = "increase" if rising else "decrease"
                raise ValueError(
                    f"@levels: levels must {order} from blue to red for direction {self.direction!r}, "
                    f"got {dict(self.levels)}"
                )
        return self

    @property
    def ordered_levels(self) -> tuple[tuple[Severity, float], ...]:
        """(severity, bound) from the lowest severity to the highest."""
        return tuple(sorted(((Severity.parse(k), b) for k, b in self.levels.items()), key=lambda p: p[0]))


class Forecast(_Strict):
    rule: str
    level: SeverityField
    within: Duration


class TrendRule(_Strict):
    id: Id
    kind: Literal["trend"]
    family: str
    metric: str
    window: Duration = Field(gt=0)
    min_points: int = Field(default=5, ge=2)
    slope_above: float | None = None  # units per minute
    slope_below: float | None = None
    forecast: Forecast | None = None
    severity: SeverityField = Severity.YELLOW
    schedule: Schedule | None = None

    @model_validator(mode="after")
    def _needs_a_condition(self) -> TrendRule:
        if self.slope_above is None and self.slope_below is None and self.forecast is None:
            raise ValueError("@slope_above: a trend rule needs slope_above, slope_below or forecast")
        return self


class DeadmanRule(_Strict):
    id: Id
    kind: Literal["deadman"]
    family: str = "*"
    after: Duration = Field(gt=0)
    severity: SeverityField = Severity.YELLOW
    per: Literal["device", "site"] = "device"


Rule = Annotated[ThresholdRule | TrendRule | DeadmanRule, Field(discriminator="kind")]


class RouteMatch(_Strict):
    family: str | None = None
    metric: str | None = None
    rule: str | None = None
    kind: Literal["threshold", "trend", "deadman"] | None = None
    site: str | None = None
    street: str | None = None
    severity_at_least: SeverityField | None = None


class Route(_Strict):
    match: RouteMatch = RouteMatch()
    notify: list[str] = Field(min_length=1)


class Escalation(_Strict):
    severity_at_least: SeverityField = Severity.BLUE
    unacknowledged_for: Duration = Field(gt=0)
    notify: list[str] = Field(min_length=1)


class ListRule(_Strict):
    severity_at_least: SeverityField = Severity.ORANGE
    # false: alerts are never listed (hazards come from self-reports and inspections only), and
    # closing an alert stays the alert book's own business, as before section 10
    from_alerts: bool = True


class Deadlines(_Strict):
    major: Duration = Field(default=86400.0, gt=0)
    general: Duration = Field(default=7 * 86400.0, gt=0)


class OverdueStep(_Strict):
    after: Duration = 0.0  # since the deadline
    notify: list[str] = Field(min_length=1)  # department ids; sector and street resolve per site


class Supervision(_Strict):
    """Contract section 10. ``overdue`` None is the default chain: the site's sector and street
    at once, then (after 1d) ``safety_bureau``, or the comprehensive departments of a district without one."""

    list_: ListRule = Field(default_factory=ListRule, alias="list")
    deadlines: Deadlines = Field(default_factory=Deadlines)
    overdue: list[OverdueStep] | None = None

    def overdue_chain(self, departments: list[Department]) -> list[OverdueStep]:
        if self.overdue is not None:
            return self.overdue
        chain = [OverdueStep(after=0.0, notify=["sector", "street"])]
        # The contract's literal default names ``safety_bureau``; a district without one gets its
        # comprehensive departments instead (nothing may assume a district's ids).
        ids = {d.id for d in departments}
        bureaus = ["safety_bureau"] if "safety_bureau" in ids else \
            [d.id for d in departments if d.kind == "comprehensive"]
        if bureaus:
            chain.append(OverdueStep(after=86400.0, notify=bureaus))
        return chain


def _default_alert_weights() -> dict[str, float]:
    return {"blue": 0.0, "yellow": 1.0, "orange": 3.0, "red": 5.0}


def _default_hazard_weights() -> dict[Literal["general", "major"], float]:
    return {"general": 5.0, "major": 15.0}


class CreditWeights(_Strict):
    """Points one item takes off the score (docs/credit.md)."""

    alerts: dict[str, float] = Field(default_factory=_default_alert_weights)  # per alert, by severity
    hazards: dict[Literal["general", "major"], float] = Field(
        default_factory=_default_hazard_weights)  # per hazard listed, by level
    overdue_day: float = Field(default=2.0, ge=0)  # per started day a hazard is past its deadline
    rejected_review: float = Field(default=5.0, ge=0)  # per rectification sent back at review

    @field_validator("alerts")
    @classmethod
    def _check_alerts(cls, v: dict[str, float]) -> dict[str, float]:
        for name, w in v.items():
            Severity.parse(name)
            if w < 0:
                raise ValueError(f"weight of {name!r} must be >= 0, got {w}")
        return v

    @field_validator("hazards")
    @classmethod
    def _check_hazards(cls, v: dict[Literal["general", "major"], float]
                       ) -> dict[Literal["general", "major"], float]:
        for name, w in v.items():
            if w < 0:
                raise ValueError(f"weight of {name!r} must be >= 0, got {w}")
        return v


def _default_grades() -> dict[str, float]:
    return {"A": 90.0, "B": 75.0, "C": 60.0}


class Credit(_Strict):
    window: Duration = Field(default=90 * 86400.0, gt=0)
    grades: dict[str, float] = Field(default_factory=_default_grades, min_length=1)  # grade → lowest score
    lowest_grade: str = "D"  # below every bound in ``grades``
    weights: CreditWeights = Field(default_factory=CreditWeights)

    @field_validator("grades")
    @classmethod
    def _check_grades(cls, v: dict[str, float]) -> dict[str, float]:
        for name, bound in v.items():
            if not 0 <= bound <= 100:
                raise ValueError(f"grade {name!r}: bound must be within 0..100, got {bound}")
        return v

    def grade(self, score: float) -> str:
        for name, bound in sorted(self.grades.items(), key=lambda kv: -kv[1]):
            if score >= bound:
                return name
        return self.lowest_grade


class DistrictConfig(_Strict):
    district: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    timezone: str = "UTC"
    departments: list[Department] = Field(min_length=1)
    streets: list[Street] = Field(default_factory=list)
    sites: list[Site] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    routing: list[Route] = Field(default_factory=list)
    escalation: list[Escalation] = Field(default_factory=list)
    supervision: Supervision = Field(default_factory=Supervision)
    credit: Credit = Field(default_factory=Credit)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r} (expected an IANA name like Asia/Shanghai)") from None
        return v

    @model_validator(mode="after")
    def _check_overdue_notify(self) -> DistrictConfig:
        known = {d.id for d in self.departments}
        for i, step in enumerate(self.supervision.overdue or ()):
            for j, dep in enumerate(step.notify):
                if dep not in known and dep not in NOTIFY_PLACEHOLDERS:
                    raise ValueError(f"@supervision.overdue[{i}].notify[{j}]: unknown department {dep!r} "
                                     "(or use sector / street)")
        if self.credit.lowest_grade in self.credit.grades:
            raise ValueError(f"@credit.lowest_grade: {self.credit.lowest_grade!r} is also in credit.grades")
        return self
