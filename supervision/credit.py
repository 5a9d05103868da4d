"""Safety credit (安全信用评价, seed item 5): a score per site from the book, never stored.

Over the rolling ``credit.window`` ending now, a site starts at 100 and loses, with the weights
of ``credit.weights``:
- per alert started in the window, the weight of the highest severity it reached (``alerts``);
- per hazard listed in the window, the weight of its level (``hazards``);
- per started day a hazard spent past its deadline inside the window (``overdue_day``);
- per rectification rejected at review in the window (``rejected_review``).
The score is floored at 0 and graded by ``credit.grades`` (the highest bound it reaches;
below all of them, ``credit.lowest_grade``). docs/credit.md has a worked example.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from domain.clock import now_ms
from domain.config import Credit
from domain.district import District
from domain.durations import format_duration
from domain.hazards import Hazard
from domain.severity import Severity
from store.state.hazard_reads import AlertTally
from store.state.records import dt_to_ms
from store.state.store import StateStore

DAY_MS = 86_400_000
START = 100.0


@dataclass(frozen=True, slots=True)
class Factor:
    name: str
    points: float  # what the factor adds to the score: 0 or negative
    detail: str


@dataclass(frozen=True, slots=True)
class CreditScore:
    site: str
    score: float
    grade: str
    window: str
    factors: tuple[Factor, ...]


def overdue_days(h: Hazard, start_ms: int, end_ms: int) -> int:
    """Started days ``h`` was past its deadline and unclosed inside [start, end)."""
    since = max(dt_to_ms(h.deadline), start_ms)
    until = min(end_ms, dt_to_ms(h.closed_at) if h.closed_at is not None else end_ms)
    return math.ceil((until - since) / DAY_MS) if until > since else 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def score_site(site: str, cfg: Credit, alerts: Iterable[AlertTally], hazards: Iterable[Hazard],
               rejected: int, start_ms: int, end_ms: int) -> CreditScore:
    w = cfg.weights
    by_sev: dict[Severity, int] = defaultdict(int)
    for a in alerts:
        by_sev[a.severity] += 1
    factors: list[Factor] = []
    for sev in sorted(Severity, reverse=True):
        n, weight = by_sev[sev], w.alerts.get(sev.label, 0.0)
        factors.append(Factor(f"alerts_{sev.label}", -n * weight,
                              f"{_plural(n, sev.label + ' alert')} × {weight:g}"))
    hazards = list(hazards)
    for level in ("major", "general"):
        n = sum(1 for h in hazards if h.level.value == level and dt_to_ms(h.listed_at) >= start_ms)
        weight = w.hazards.get(level, 0.0)  # type: ignore[call-overload]
        factors.append(Factor(f"hazards_{level}", -n * weight, f"{_plural(n, level + ' hazard')} × {weight:g}"))
    days = sum(overdue_days(h, start_ms, end_ms) for h in hazards)
    factors.append(Factor("overdue_days", -days * w.overdue_day,
                          f"{_plural(days, 'day')} past deadlines × {w.overdue_day:g}"))
    factors.append(Factor("rejected_reviews", -rejected * w.rejected_review,
                          f"{_plural(rejected, 'rejected review')} × {w.rejected_review:g}"))
    factors = [replace_zero(f) for f in factors]
    score = round(max(0.0, START + sum(f.points for f in factors)), 1)
    return CreditScore(site, score, cfg.grade(score), format_duration(cfg.window), tuple(factors))


def replace_zero(f: Factor) -> Factor:
    """-0.0 reads oddly in JSON: a factor that took nothing shows 0."""
    return f if f.points else Factor(f.name, 0.0, f.detail)


def credit_scores(district: District, state: StateStore, sites: Iterable[str] | None = None,
                  at_ms: int | None = None) -> list[CreditScore]:
    """Scores of ``sites`` (every site of the district by default), worst first (then by id)."""
    cfg = district.config.credit
    end = now_ms() if at_ms is None else at_ms
    start = end - int(cfg.window * 1000)
    alerts: dict[str, list[AlertTally]] = defaultdict(list)
    for a in state.alerts_started(start, end):
        alerts[a.site].append(a)
    hazards: dict[str, list[Hazard]] = defaultdict(list)
    for h in state.hazards_touching(start, end):
        hazards[h.site].append(h)
    rejected = state.rejections(start, end)
    wanted = list(district.sites) if sites is None else [s for s in sites if s in district.sites]
    out = [score_site(s, cfg, alerts[s], hazards[s], rejected.get(s, 0), start, end) for s in wanted]
    return sorted(out, key=lambda c: (c.score, c.site))
