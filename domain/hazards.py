"""Hazards on the government's books (挂账督办 → 销账), contract section 10.

A hazard is listed from an alert, a site's self-report (隐患自查自报) or an inspection; the
enterprise files a plan with the five essentials (五到位: measures, owner, funds, deadline,
contingency), reports progress, submits it for review, and only the site's sector department
(or the admin) takes it off the books. Past its deadline it is ``overdue`` and climbs the
``supervision.overdue`` chain (逐级报告).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class HazardState(enum.StrEnum):
    LISTED = "listed"          # on the books, no plan yet
    RECTIFYING = "rectifying"  # a plan is filed (or a review was rejected)
    REVIEW = "review"          # the enterprise reports the rectification done
    CLOSED = "closed"          # verified: off the books (销账)


class HazardLevel(enum.StrEnum):
    GENERAL = "general"
    MAJOR = "major"


class HazardSource(enum.StrEnum):
    ALERT = "alert"
    SELF_REPORT = "self_report"
    INSPECTION = "inspection"


class HazardEventType(enum.StrEnum):
    LISTED = "listed"
    JOINED = "joined"          # another alert of the same rule joined the hazard
    RAISED = "raised"          # an alert of the hazard turned red: the hazard became major
    PLANNED = "planned"
    PROGRESS = "progress"
    ATTACHMENT = "attachment"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    CLOSED = "closed"
    OVERDUE = "overdue"


# The events that are notified (``hazard_{type}``); the others are only on the record.
NOTIFIED = frozenset({HazardEventType.LISTED, HazardEventType.PLANNED, HazardEventType.SUBMITTED,
                      HazardEventType.REJECTED, HazardEventType.CLOSED, HazardEventType.OVERDUE})
OPEN_STATES = (HazardState.LISTED, HazardState.RECTIFYING, HazardState.REVIEW)


@dataclass(frozen=True, slots=True)
class Plan:
    """The five essentials of a rectification (整改措施、责任、资金、时限和预案)."""

    measures: str
    owner: str
    funds: str
    deadline: datetime
    contingency: str


@dataclass(frozen=True, slots=True)
class HazardEvent:
    id: int
    hazard_id: str
    type: HazardEventType
    at: datetime
    by: str
    note: str | None = None
    attachment: str | None = None  # attachment id, for ``attachment`` events
    departments: tuple[str, ...] = ()  # departments this event added (overdue steps, joins)

    @property
    def notice_type(self) -> str:
        """The notification type of the contract: ``hazard_listed`` ..."""
        return f"hazard_{self.type.value}"


@dataclass(frozen=True, slots=True)
class Hazard:
    id: str
    site: str
    family: str
    street: str
    sector: str
    title: str
    description: str
    level: HazardLevel
    source: HazardSource
    state: HazardState
    listed_at: datetime
    deadline: datetime
    overdue: bool = False
    rule: str | None = None  # the rule of its alerts, for hazards listed from an alert
    alert_ids: tuple[str, ...] = ()
    plan: Plan | None = None
    departments: tuple[str, ...] = ()
    closed_at: datetime | None = None
    updated_at: datetime | None = None
    events: tuple[HazardEvent, ...] = field(default=())

    @property
    def is_open(self) -> bool:
        return self.state is not HazardState.CLOSED


@dataclass(frozen=True, slots=True)
class Attachment:
    """Evidence of a rectification; ``data`` is None when listed without content."""

    id: str
    hazard_id: str
    name: str
    type: str  # image/jpeg | image/png | application/pdf
    size: int
    sha256: str
    at: datetime
    by: str
    data: bytes | None = None
