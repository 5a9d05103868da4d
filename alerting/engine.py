"""The alert engine: validated readings in, alert signals out.

Pure: no I/O and no clock of its own. Rules are judged on event time (the readings'
timestamps); the deadman sweep gets ``now_ms`` from its caller (the scheduler). Rules are
compiled once into per-(family, metric) lookups, and state lives per alert key
(rule, site, device, metric), grouped by series (site, device, metric). Per reading, one
lookup finds the device's record (its series by metric, its deadman units, its site's
derived metrics); per value, one more finds the series. Flapping is the alert book's concern.

Almost every reading changes nothing: values sit between levels, and a trend's line only
moves when a point enters or leaves its window. Each series keeps the region (a value band
and a time) where none of its trackers can change (``base.Tracker``), so such a value costs
one comparison; the region is exact, so skipping never changes a signal
(``tests/rules/test_engine_skip.py`` checks this against stepping every tracker).

A reading older than its series' newest is late: it updates nothing here (ingest still
stores it). Within a batch, readings are judged before statuses, so an ``offline`` that a
newer reading in the same batch contradicts is recognised as stale.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from alerting.rules.base import CompiledRule, Tracker
from alerting.rules.clock import LocalClock
from alerting.rules.deadman import DeadmanTracker, Unit
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
    """The trackers of every rule on one (site, device, metric), the newest time seen, and
    where all of them are quiet at once: ``lo <= value <= hi`` and ``ts < until`` (the
    intersection of the trackers' own, ``base.Tracker``), so the common reading is skipped
    with one test however many rules read the metric."""

    __slots__ = ("hi", "lo", "newest", "trackers", "until")

    def __init__(self, trackers: tuple[Tracker, ...]) -> None:
        self.trackers = trackers
        self.newest = -(1 << 62)
        self.lo, self.hi, self.until = _INF, -_INF, -_INF
        self.requiet()

    def requiet(self) -> None:
        """After any tracker's state changed (plain comparisons: this runs on every stepped reading)."""
        trackers = self.trackers
        if len(trackers) == 1:
            t = trackers[0]
            self.lo, self.hi, self.until = t.lo, t.hi, t.until
            return
        lo, hi, until = -_INF, _INF, _INF
        for t in trackers:
            if t.lo > lo:
                lo = t.lo
            if t.hi < hi:
                hi = t.hi
            if t.until < until:
                until = t.until
        self.lo, self.hi, self.until = lo, hi, until


# Marks a metric no rule of the device's family reads, in the per-device cache; never in
# Engine._series. Its ``newest`` is later than any reading, so the engine's lateness test
# passes over it without a test of its own (and never writes it).
_UNRULED = _Series(())
_UNRULED.newest = 1 << 62


class _Device:
    """What the engine keeps per (site, device), found with one lookup per reading: the
    series by metric (``_UNRULED`` for a metric no rule reads), the site's latest values,
    the deadman units the device's readings touch, and the site's derived metrics."""

    __slots__ = ("derived", "latest", "series", "site_unit", "unit")

    def __init__(self, latest: dict[str, LatestValue], unit: Unit | None, site_unit: Unit | None,
                 derived: tuple[tuple[str, str, float], ...]) -> None:
        self.series: dict[str, _Series] = {}
        self.latest = latest
        self.unit = unit
        self.site_unit = site_unit
        self.derived = derived


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
        # Per (site, device): devices readings came from (their deadman units wired in), and
        # devices only restored or replayed so far, whose units a first reading wires: the
        # deadman must not learn of a device from anything but its own messages (``replay``).
        self._devices: dict[tuple[str, str], _Device] = {}
        self._staged: dict[tuple[str, str], _Device] = {}
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
            self._values(self._quiet_device(r.family, r.site, r.device), r, discard)
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
                    tracker.requiet()
                elif isinstance(tracker, TrendTracker):
                    tracker.severity = None
                    tracker.requiet()
            series.requiet()

    def latest(self, site: str) -> dict[str, LatestValue]:
        """metric → (value, ts_ms, device) of the newest reading of each metric at ``site``,
        the site's derived metrics among them (computed here, not on every reading)."""
        latest = self._latest.get(site)
        if not latest:
            return {}
        return latest | self._derived.derive_latest(site, latest)

    def know_device(self, site: str, device: str, last_seen_ms: int) -> bool:
        """Tell the deadman about a device seen before (e.g. before a restart); False for an unknown site."""
        known = self._district.sites.get(site)
        if known is None:
            return False
        self._deadman.know(known.family, site, device, last_seen_ms)
        return True

    def _reading(self, r: Reading, out: list[Signal]) -> None:
        device = self._devices.get((r.site, r.device))
        if device is None:
            device = self._wire(r.family, r.site, r.device)
        # The deadman's part, inline: note the time, resolve what was firing (DeadmanTracker.seen).
        ts = r.ts_ms
        unit = device.unit
        if unit is not None:
            seen = unit.last_seen
            if seen is None or ts > seen:
                unit.last_seen = ts
            if unit.firing:
                self._deadman.reporting(unit, r.family, r.site, r.device, ts, out)
        unit = device.site_unit
        if unit is not None:
            seen = unit.last_seen
            if seen is None or ts > seen:
                unit.last_seen = ts
            if unit.firing:
                self._deadman.reporting(unit, r.family, r.site, "", ts, out)
        self._values(device, r, out)

    def _values(self, device: _Device, r: Reading, out: list[Signal]) -> None:
        ts, latest, by_metric = r.ts_ms, device.latest, device.series
        for metric, value in r.values.items():
            if not -_INF < value < _INF:  # NaN or infinite: nothing to judge
                continue
            previous = latest.get(metric)
            if previous is None or ts >= previous[1]:
                latest[metric] = (value, ts, r.device)
            # One lookup per value: the device's dict caches the series of a ruled metric and
            # _UNRULED for one no rule reads (plans are fixed at start), so the plan is consulted
            # only on a metric's first value from this device.
            series = by_metric.get(metric)
            if series is None:
                series = self._series_of(device, r.family, r.site, r.device, metric)
            if ts < series.newest:  # late (or _UNRULED)
                continue
            series.newest = ts
            if series.lo <= value <= series.hi and ts < series.until:  # no rule would change
                continue
            self._step(series, value, ts, out)
        if device.derived:
            self._derive(device, r, out)

    def _derive(self, device: _Device, r: Reading, out: list[Signal]) -> None:
        """The site's derived metrics of one reading, judged after its own values."""
        ts, values, by_metric = r.ts_ms, r.values, device.series
        for source, metric, divisor in device.derived:
            raw = values.get(source)
            if raw is None:
                continue
            value = raw / divisor
            if not -_INF < value < _INF:
                continue
            series = by_metric.get(metric)
            if series is None:
                series = self._series_of(device, r.family, r.site, r.device, metric)
            if ts < series.newest:
                continue
            series.newest = ts
            if series.lo <= value <= series.hi and ts < series.until:
                continue
            self._step(series, value, ts, out)

    @staticmethod
    def _step(series: _Series, value: float, ts: int, out: list[Signal]) -> None:
        for tracker in series.trackers:
            if tracker.lo <= value <= tracker.hi and ts < tracker.until:
                continue
            signal = tracker.step(value, ts)
            if signal is not None:
                out.append(signal)
        series.requiet()

    def _wire(self, family: str, site: str, device: str) -> _Device:
        """A device's first reading: its record (from a restore or replay, if any) with the
        deadman units it touches."""
        record = self._staged.pop((site, device), None) or self._record(site)
        record.unit = self._deadman.unit(family, site, device)
        record.site_unit = self._deadman.unit(family, site, "")
        self._devices[(site, device)] = record
        return record

    def _quiet_device(self, family: str, site: str, device: str) -> _Device:
        """A device's record for a restore or a replay, without telling the deadman of it."""
        record = self._devices.get((site, device)) or self._staged.get((site, device))
        if record is None:
            record = self._staged[(site, device)] = self._record(site)
        return record

    def _record(self, site: str) -> _Device:
        latest = self._latest.get(site)
        if latest is None:
            latest = self._latest[site] = {}
        return _Device(latest, None, None, self._derived.of_site(site))

    def _series_of(self, device: _Device, family: str, site: str, name: str, metric: str) -> _Series:
        """The series of a metric's first value from a device: new, or _UNRULED."""
        rules = self._plans.get(family, _NO_RULES).get(metric)
        if rules is None:
            device.series[metric] = _UNRULED
            return _UNRULED
        return self._new_series(device, site, name, metric, rules)

    def _new_series(self, device: _Device, site: str, name: str, metric: str,
                    rules: tuple[CompiledRule, ...]) -> _Series:
        series = _Series(tuple(rule.tracker(AlertKey(rule.rule_id, site, name, metric)) for rule in rules))
        self._series[(site, name, metric)] = series
        device.series[metric] = series
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
            device = self._quiet_device(site.family, key.site, key.device)
            series = self._new_series(device, key.site, key.device, key.metric, rules)
        for tracker in series.trackers:
            if tracker.key.rule == key.rule:
                tracker.restore(severity)
                series.requiet()
                return True
        return False
