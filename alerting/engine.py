"""The alert engine: validated readings in, alert signals out.

Pure: no I/O and no clock of its own. Rules are judged on event time (the readings'
timestamps); the deadman sweep gets ``now_ms`` from its caller (the scheduler). Rules are
compiled once into per-(family, metric) lookups, and state lives per alert key
(rule, site, device, metric), grouped by series (site, device, metric) so one dictionary
lookup per value finds every rule's state. Flapping is the alert book's concern.

A reading older than its series' newest is late: it updates nothing here (ingest still
stores it). Within a batch, readings are judged before statuses, so an ``offline`` that a
newer reading in the same batch contradicts is recognised as stale.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from alerting.rules.base import CompiledRule, Tracker
from alerting.rules.clock import LocalClock
from alerting.rules.deadman import DeadmanTracker
from alerting.rules.threshold import ThresholdSpec, ThresholdTracker
from alerting.rules.trend import TrendSpec, TrendTracker
from domain.alerts import AlertKey, Signal
from domain.config import DeadmanRule, ThresholdRule, TrendRule
from domain.derived import DerivedMetrics
from domain.district import District
from domain.readings import Batch, Reading
from domain.severity import Severity

LatestValue = tuple[float, int, str]  # (value, ts_ms, device)
Plan = Mapping[str, tuple[CompiledRule, ...]]  # metric → the rules on it, config order
_INF = float("inf")
_NO_RULES: Plan = {}


class _Series:
    """The trackers of every rule on one (site, device, metric), and the newest time seen."""

    __slots__ = ("newest", "trackers")

    def __init__(self, trackers: tuple[Tracker, ...]) -> None:
        self.trackers = trackers
        self.newest = -(1 << 62)


# Marks a metric no rule of the device's family reads, in the per-device cache; never in
# Engine._series and never stepped (its ``newest`` is not kept).
_UNRULED = _Series(())


def _compile(district: District, clock: LocalClock) -> dict[str, Plan]:
    plans: dict[str, dict[str, list[CompiledRule]]] = {}
    for rule in district.rules.values():
        compiled: CompiledRule
        if isinstance(rule, ThresholdRule):
            compiled = ThresholdSpec(rule, clock)
        elif isinstance(rule, TrendRule):
            target = district.rules.get(rule.forecast.rule) if rule.forecast else None
            compiled = TrendSpec(rule, target if isinstance(target, ThresholdRule) else None, clock)
        else:
            continue
        plans.setdefault(rule.family, {}).setdefault(rule.metric, []).append(compiled)
    return {family: {m: tuple(rules) for m, rules in by_metric.items()}
            for family, by_metric in plans.items()}


class Engine:
    """Rule evaluation for one district. Not thread-safe: the caller serialises ``process``,
    ``sweep``, ``restore`` and ``know_device`` (one thread or one lock); ``latest`` returns a copy.
    """

    def __init__(self, district: District) -> None:
        self._district = district
        self._plans = _compile(district, LocalClock(district.tz))
        self._derived = DerivedMetrics(district.sites)
        self._deadman = DeadmanTracker(r for r in district.rules.values() if isinstance(r, DeadmanRule))
        self._series: dict[tuple[str, str, str], _Series] = {}
        # The same series by (site, device), then metric: one tuple key per reading, not per value.
        self._by_device: dict[tuple[str, str], dict[str, _Series]] = {}
        self._latest: dict[str, dict[str, LatestValue]] = {}

    def process(self, batch: Batch) -> list[Signal]:
        """Judge a batch; the signals come in the order the readings decided them."""
        out: list[Signal] = []
        for reading in batch.readings:
            self._reading(reading, out)
        for status in batch.statuses:
            self._deadman.status(status, out)
        return out

    def sweep(self, now_ms: int) -> list[Signal]:
        """Deadman check at ``now_ms`` (epoch ms, the caller's clock)."""
        return self._deadman.sweep(now_ms)

    def restore(self, firing: Iterable[tuple[AlertKey, Severity]]) -> list[AlertKey]:
        """Resume keys the alert book says are firing, without firing them again.

        The next reading judges them as usual: a changed level is reported, a cleared
        condition clears. Returns the keys the current config cannot place (rule or site
        gone, or no longer matching): the caller decides what becomes of their alerts.
        """
        return [key for key, severity in firing if not self._restore(key, severity)]

    def replay(self, readings: Iterable[Reading]) -> None:
        """Take readings from before this process (``alerting.restore``) without signalling:
        trend windows, pending timers and latest values fill; follow with ``settle``. The
        deadman is left alone (it is seeded with ``know_device``): an old reading must not
        clear a device the book has silent."""
        discard: list[Signal] = []
        for r in readings:
            plan = self._plans.get(r.family, _NO_RULES)
            latest = self._latest.setdefault(r.site, {})
            self._values(r, r.values, plan, latest, discard)
            derived = self._derived.derive(r.site, r.values)
            if derived:
                self._values(r, derived, plan, latest, discard)
            discard.clear()

    def firing(self, sites: Collection[str] | None = None) -> dict[AlertKey, Severity]:
        """The threshold and trend keys at ``sites`` (None: all) the engine holds as firing."""
        out: dict[AlertKey, Severity] = {}
        for (site, _device, _metric), series in self._series.items():
            if sites is None or site in sites:
                for tracker in series.trackers:
                    severity: Severity | None = getattr(tracker, "severity", None)
                    if severity is not None:
                        out[tracker.key] = severity
        return out

    def settle(self, sites: Collection[str] | None, firing: Mapping[AlertKey, Severity]) -> None:
        """After ``replay``: each key at ``sites`` (None: all) fires as the book says, at its
        severity; a key the book has not firing but the replay left firing is armed instead
        (its pending period served), so the next reading past a level raises it once."""
        for key, severity in firing.items():
            if sites is None or key.site in sites:
                self._restore(key, severity)  # also keys the replay had no readings for
        for (site, _device, _metric), series in self._series.items():
            if sites is not None and site not in sites:
                continue
            for tracker in series.trackers:
                if tracker.key in firing:
                    continue
                if isinstance(tracker, ThresholdTracker) and tracker.level >= 0:
                    tracker.level, tracker.severity, tracker.pending_since = -1, None, -(1 << 62)
                    tracker.reidle()
                elif isinstance(tracker, TrendTracker):
                    tracker.severity = None

    def latest(self, site: str) -> dict[str, LatestValue]:
        """metric → (value, ts_ms, device) of the newest reading of each metric at ``site``."""
        return dict(self._latest.get(site, {}))

    def know_device(self, site: str, device: str, last_seen_ms: int) -> bool:
        """Tell the deadman about a device seen before (e.g. before a restart); False for an unknown site."""
        known = self._district.sites.get(site)
        if known is None:
            return False
        self._deadman.know(known.family, site, device, last_seen_ms)
        return True

    def _reading(self, r: Reading, out: list[Signal]) -> None:
        self._deadman.seen(r.family, r.site, r.device, r.ts_ms, out)
        plan = self._plans.get(r.family, _NO_RULES)
        latest = self._latest.get(r.site)
        if latest is None:
            latest = self._latest[r.site] = {}
        self._values(r, r.values, plan, latest, out)
        derived = self._derived.derive(r.site, r.values)
        if derived:
            self._values(r, derived, plan, latest, out)

    def _values(self, r: Reading, values: Mapping[str, float], plan: Plan,
                latest: dict[str, LatestValue], out: list[Signal]) -> None:
        site, device, ts = r.site, r.device, r.ts_ms
        by_metric = self._by_device.get((site, device))
        if by_metric is None:
            by_metric = self._by_device[(site, device)] = {}
        for metric, value in values.items():
            if not -_INF < value < _INF:  # NaN or infinite: nothing to judge
                continue
            previous = latest.get(metric)
            if previous is None or ts >= previous[1]:
                latest[metric] = (value, ts, device)
            # One lookup per value: the device's dict caches the series of a ruled metric and
            # _UNRULED for one no rule reads (plans are fixed at start), so the plan is consulted
            # only on a metric's first value from this device.
            series = by_metric.get(metric)
            if series is None:
                rules = plan.get(metric)
                if rules is None:
                    by_metric[metric] = _UNRULED
                    continue
                series = self._new_series(site, device, metric, rules)
            elif series is _UNRULED or ts < series.newest:
                continue
            series.newest = ts
            for tracker in series.trackers:
                if value * tracker.sign <= tracker.idle:  # a quiet threshold: step would do nothing
                    continue
                signal = tracker.step(value, ts)
                if signal is not None:
                    out.append(signal)

    def _new_series(self, site: str, device: str, metric: str, rules: tuple[CompiledRule, ...]) -> _Series:
        series = _Series(tuple(rule.tracker(AlertKey(rule.rule_id, site, device, metric)) for rule in rules))
        self._series[(site, device, metric)] = series
        self._by_device.setdefault((site, device), {})[metric] = series
        return series

    def _restore(self, key: AlertKey, severity: Severity) -> bool:
        rule = self._district.rules.get(key.rule)
        site = self._district.sites.get(key.site)
        if rule is None or site is None:
            return False
        if isinstance(rule, DeadmanRule):
            if key.metric:
                return False
            return self._deadman.restore(rule, site.family, key.site, key.device, severity)
        rules = self._plans.get(site.family, _NO_RULES).get(key.metric)
        if rules is None or rule.family != site.family or not key.device:
            return False
        series = self._series.get((key.site, key.device, key.metric))
        if series is None:
            series = self._new_series(key.site, key.device, key.metric, rules)
        for tracker in series.trackers:
            if tracker.key.rule == key.rule:
                tracker.restore(severity)
                return True
        return False
