"""Bodies of the hazard, report and credit endpoints (contract section 10).

Outputs are built from ``supervision.json`` (the same shape the webhooks carry), so times are
RFC 3339 strings with the district's offset already.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from api.schemas import StrictIn
from domain.hazards import Attachment, Hazard
from supervision import CreditScore, ReportRow, attachment_json, hazard_json

LevelName = Literal["general", "major"]
SourceName = Literal["alert", "self_report", "inspection"]
HazardStateName = Literal["listed", "rectifying", "review", "closed"]
Text = Field(min_length=1, max_length=4000)


class HazardIn(StrictIn):
    site: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    level: LevelName = "general"
    source: SourceName | None = Field(default=None, description="default: self_report for a site user, "
                                                                "inspection for a department")


class PlanIn(StrictIn):
    """The five essentials (五到位): all required."""

    measures: str = Text
    owner: str = Field(min_length=1, max_length=200)
    funds: str = Field(min_length=1, max_length=200, description="the money set aside, e.g. 5万元")
    deadline: AwareDatetime
    contingency: str = Text


class ProgressIn(StrictIn):
    note: str = Text


class SubmitIn(StrictIn):
    note: str | None = Field(default=None, max_length=4000)


class VerifyIn(StrictIn):
    accept: bool
    note: str = Text


class PlanOut(BaseModel):
    measures: str
    owner: str
    funds: str
    deadline: str
    contingency: str


class HazardEventOut(BaseModel):
    id: int
    type: str
    at: str
    by: str
    note: str | None
    attachment: str | None
    departments: list[str]


class HazardOut(BaseModel):
    id: str
    site: str
    family: str
    street: str
    sector: str
    title: str
    description: str
    level: LevelName
    source: SourceName
    rule: str | None
    alert_ids: list[str]
    state: HazardStateName
    listed_at: str
    deadline: str
    overdue: bool
    plan: PlanOut | None
    departments: list[str]
    events: list[HazardEventOut]
    closed_at: str | None
    updated_at: str | None

    @classmethod
    def of(cls, h: Hazard, tz: tzinfo) -> HazardOut:
        return cls.model_validate(hazard_json(h, tz))


class AttachmentOut(BaseModel):
    id: str
    name: str
    type: str
    size: int
    sha256: str
    at: str
    by: str

    @classmethod
    def of(cls, a: Attachment, tz: tzinfo) -> AttachmentOut:
        return cls.model_validate(attachment_json(a, tz))


class ReportRowOut(BaseModel):
    group: str
    listed: int
    closed: int
    open: int
    overdue: int
    median_days_to_close: float | None

    @classmethod
    def of(cls, r: ReportRow) -> ReportRowOut:
        return cls(group=r.group, listed=r.listed, closed=r.closed, open=r.open, overdue=r.overdue,
                   median_days_to_close=r.median_days_to_close)


class FactorOut(BaseModel):
    name: str
    points: float
    detail: str


class CreditOut(BaseModel):
    site: str
    score: float
    grade: str
    window: str
    factors: list[FactorOut]

    @classmethod
    def of(cls, c: CreditScore) -> CreditOut:
        return cls(site=c.site, score=c.score, grade=c.grade, window=c.window,
                   factors=[FactorOut(name=f.name, points=f.points, detail=f.detail) for f in c.factors])
