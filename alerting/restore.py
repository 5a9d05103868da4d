"""Rule windows from InfluxDB: what a process taking over sites (or restarting) must remember.

The alert book says which alerts are firing (``AlertService`` restores those at start); the
rest of the engine's memory is in the readings: trend windows, pending ``for`` timers and
the last values. ``restore_windows`` replays, for each rule's metric (a derived metric's
source for derived rules) at the given sites, the last ``max(window, for)`` (plus a margin)
of readings into the engine, thinned to a step (``store.windows``), without recording any
signal; then every replayed key is set back to what the engine held before the replay (the
book's firing alerts, restored into it first): firing at the book's severity, or not firing.
A key the replay left firing that the book does not have firing is armed instead (its
``for`` already served), so the next reading past the level raises it: nothing is raised
twice, and an alert whose recording the last process did not finish is raised by the next
reading rather than forgotten.

With ``last`` (``WindowRestorer`` gives it) the newest reading of every stored metric of the
sites' families (30 days back, as ``store.history``'s ``latest``) is replayed too, before the
windows, for each series the windows did not cover: so ``latest`` holds every metric, not only
the ruled ones (the API's site detail reads InfluxDB only when ``latest`` is empty). Replaying
such an old reading is what the last process's engine had seen as well; ``settle`` then sets
the rules' state back as for the windows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

from alerting.engine import Engine
from domain.clock import now_ms as wall_ms  # the one clock (``now_ms`` names a parameter here)
from domain.config import ThresholdRule, TrendRule
from domain.derived import DERIVED
from domain.district import District
from domain.families import FAMILIES
from domain.readings import Reading
from store.history import QueryClient
from store.windows import last_readings, recent_readings

log = logging.getLogger(__name__)
MARGIN_MS = 30_000  # a run that began just before the window still finds its start
STEPS_PER_WINDOW = 256  # twice the trend ring's resolution
LATEST_LOOKBACK_MS = 30 * 86_400_000  # as far back as the API's InfluxDB fallback for latest values


# ``store.windows.recent_readings`` bound to an InfluxDB client and the district:
# (family, metrics, sites or None for all, start ms, end ms, step ms) → readings.
WindowSource = Callable[[str, list[str], Collection[str] | None, int, int, int], list[Reading]]
# ``store.windows.last_readings`` bound likewise: (family, metrics, sites or None, start ms) → readings.
LastSource = Callable[[str, list[str], Collection[str] | None, int], list[Reading]]


@dataclass(frozen=True)
class Lookback:
    family: str
    metric: str  # a device metric (the source of a derived one)
    span_ms: int

    @property
    def step_ms(self) -> int:
        return max(1000, self.span_ms // STEPS_PER_WINDOW)


def lookbacks(district: District) -> list[Lookback]:
    """Per (family, stored metric): how far back its rules remember; rules without memory
    (a threshold without ``for``) need nothing, the book has their state."""
    spans: dict[tuple[str, str], int] = {}
    for rule in district.rules.values():
        if isinstance(rule, TrendRule):
            span = round(rule.window * 1000)
        elif isinstance(rule, ThresholdRule):
            span = round(rule.for_ * 1000)
        else:
            continue
        metric = rule.metric
        spec = FAMILIES.get(rule.family, {}).get(metric)
        if spec is None or span <= 0:
            continue
        if spec.derived:
            if metric not in DERIVED:
                continue
            metric = DERIVED[metric][0]
        key = (rule.family, metric)
        spans[key] = max(spans.get(key, 0), span + MARGIN_MS)
    return [Lookback(f, m, s) for (f, m), s in sorted(spans.items())]


def restore_windows(engine: Engine, district: District, source: WindowSource, sites: Collection[str] | None,
                    run: Callable[[Callable[[], int]], int] | None = None, now_ms: int | None = None,
                    last: LastSource | None = None) -> int:
    """Replays the sites' recent readings into ``engine`` (``sites`` None: all) and sets the
    replayed keys back to what the engine held as firing before (the book's firing alerts,
    restored into it first). With ``last``, also each series' newest reading (see above).
    Returns the readings replayed.

    The InfluxDB queries run first, outside ``run``; ``run`` wraps the engine part (the
    caller's engine lock). Raises what ``source`` raises (``InfluxError``): the caller decides
    whether to start without the windows.
    """
    now = wall_ms() if now_ms is None else now_ms
    wanted = None if sites is None else set(sites)
    readings: list[Reading] = []
    for lb in lookbacks(district):
        family_sites = [s.id for s in district.sites.values()
                        if s.family == lb.family and (wanted is None or s.id in wanted)]
        if family_sites:
            readings += source(lb.family, [lb.metric], None if wanted is None else family_sites,
                               now - lb.span_ms, now + 1, lb.step_ms)
    if last is not None:
        readings += _newest(district, last, wanted, readings, now)
    # Oldest first across series: per series order is what the engine needs, and a site's
    # ``latest`` then ends on its newest value.
    readings.sort(key=lambda r: r.ts_ms)

    def apply() -> int:
        firing = engine.firing(wanted)
        engine.replay(readings)
        engine.settle(wanted, firing)
        return len(readings)

    n = run(apply) if run is not None else apply()
    log.info("alerting: rule windows restored from %d readings for %s sites", n,
             "all" if wanted is None else len(wanted))
    return n


def _newest(district: District, last: LastSource, wanted: set[str] | None, covered_by: list[Reading],
            now: int) -> list[Reading]:
    """Each series' newest reading, for the series the windows' readings do not cover (there the
    windows' last step already is the newest value: replaying it twice would count it twice)."""
    covered = {(r.site, r.device, m) for r in covered_by for m in r.values}
    out: list[Reading] = []
    for family in sorted({s.family for s in district.sites.values()}):
        family_sites = [s.id for s in district.sites.values()
                        if s.family == family and (wanted is None or s.id in wanted)]
        metrics = [m for m, spec in FAMILIES.get(family, {}).items() if not spec.derived]
        if family_sites and metrics:
            out += [r for r in last(family, metrics, None if wanted is None else family_sites,
                                    now - LATEST_LOOKBACK_MS)
                    if not any((r.site, r.device, m) in covered for m in r.values)]
    return out


class WindowRestorer:
    """``restore_windows`` for a partition's fresh engine, not yet in use (no lock needed):
    ``WindowRestorer(district, influx)(engine, sites)``; what ``service.engines`` calls at takeover."""

    def __init__(self, district: District, client: QueryClient) -> None:
        self.district, self.client = district, client

    def source(self, family: str, metrics: list[str], sites: Collection[str] | None, start_ms: int,
               end_ms: int, step_ms: int) -> list[Reading]:
        return recent_readings(self.client, self.district, family, metrics, sites, start_ms, end_ms, step_ms)

    def last(self, family: str, metrics: list[str], sites: Collection[str] | None, start_ms: int) -> list[Reading]:
        return last_readings(self.client, self.district, family, metrics, sites, start_ms)

    def __call__(self, engine: Engine, sites: Collection[str]) -> None:
        restore_windows(engine, self.district, self.source, sites, last=self.last)
