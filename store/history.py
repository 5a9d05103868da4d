"""History and trend reads from InfluxDB (contract section 5), and the downsampling behind them.

Every identifier that reaches InfluxQL comes from the registry (the site's family names the
measurement, the family's metric table names the field) and is quoted; values a caller types
(site, device) travel as bound parameters, times as integers we computed. Nothing a caller
sends is ever pasted into a query.

Long ranges read from the ``downsampled_1h`` retention policy that 1.x continuous queries keep
filled (``ensure_downsampling``); only aggregates that stay exact when combined from hourly
partials (mean from sums and counts, max, min, count) use it, the rest always read raw points.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.clock import now_ms as wall_ms  # the one clock (``now_ms`` names a parameter here)
from domain.derived import DERIVED, DerivedMetrics
from domain.district import District
from domain.durations import format_duration
from domain.families import FAMILIES
from store.influx import InfluxError
from store.retention import ensure_policy

log = logging.getLogger(__name__)

AGGREGATES: tuple[str, ...] = ("mean", "max", "min", "last", "count", "p95")
MAX_POINTS = 10_000
DOWNSAMPLED_RP = "downsampled_1h"
HOUR_MS = 3_600_000
MAX_EVERY_MS = 366 * 86_400_000
# What ingest accepts as a device id (a topic level): it travels as a bound parameter, never as text.
DEVICE_PATTERN = re.compile(r"[^\x00-\x1f\x7f\\]{1,128}")
_RAW_FN = {"mean": "mean({f})", "max": "max({f})", "min": "min({f})", "last": "last({f})",
           "count": "count({f})", "p95": "percentile({f}, 95)"}
# agg → per column: (expression on the downsampled RP, expression on raw points, how partials combine)
_PARTIALS: Mapping[str, tuple[tuple[str, str, str], ...]] = {
    "mean": (('sum("sum_{n}")', "sum({f})", "sum"), ('sum("count_{n}")', "count({f})", "sum")),
    "max": (('max("max_{n}")', "max({f})", "max"),),
    "min": (('min("min_{n}")', "min({f})", "min"),),
    "count": (('sum("count_{n}")', "count({f})", "sum"),),
}
_COMBINE: Mapping[str, Callable[[float, float], float]] = {"sum": lambda a, b: a + b, "max": max, "min": min}
_DOWNSAMPLE_REFRESH_MS = 48 * HOUR_MS


class QueryClient(Protocol):
    """What we need of ``store.influx.InfluxClient``."""

    database: str

    def query(self, influxql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...


class UnknownSite(LookupError):
    """The site is not in the registry."""


class HistoryError(ValueError):
    """A history or trend request the store refuses; the message names the option and the value."""


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier (only ever applied to names from the registry)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Series:
    """Where a (site, metric) lives: measurement, stored field and the divisor of a derived metric."""

    site: str
    metric: str
    measurement: str
    field: str
    divisor: float = 1.0


@dataclass(frozen=True, slots=True)
class HistoryResult:
    site: str
    metric: str
    agg: str
    every_s: float
    start_ms: int
    end_ms: int
    source: str  # "raw" | "downsampled_1h"
    points: list[tuple[int, float | None]]  # (bucket start ms, value)

    @property
    def every(self) -> str:
        return format_duration(self.every_s)


def resolve_series(district: District, site_id: str, metric: str) -> Series:
    """The registry's names for a site's metric; raises UnknownSite or HistoryError."""
    site = district.sites.get(site_id)
    if site is None:
        raise UnknownSite(f"unknown site {site_id!r}")
    metrics = FAMILIES[site.family]
    spec = metrics.get(metric)
    if spec is None:
        raise HistoryError(f"metric={metric!r}: site {site.id} ({site.family}) has no such metric "
                           f"(expected one of {', '.join(metrics)})")
    if not spec.derived:
        return Series(site.id, metric, site.family, metric)
    # Derived metrics are not stored: they are a device metric over a constant of the site,
    # and scaling by a positive constant commutes with every aggregate we offer.
    derived = DERIVED[metric]
    divisor = derived.divisor(site)
    if not divisor:
        raise HistoryError(f"metric={metric!r}: site {site.id} has no {derived.attribute} to derive it from")
    return Series(site.id, metric, site.family, derived.source, divisor)


def check_device(device: str | None) -> None:
    if device is not None and not DEVICE_PATTERN.fullmatch(device):
        raise HistoryError(f"device={device!r}: expected 1-128 characters without control characters "
                           "or backslash")


def _bucket_count(start_ms: int, end_ms: int, every_ms: int) -> int:
    first = start_ms - start_ms % every_ms
    return -(-(end_ms - first) // every_ms)


def _to_ms(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value)
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)


def _rows(series: Iterable[Mapping[str, Any]]) -> Iterable[dict[str, Any]]:
    for s in series:
        tags = s.get("tags") or {}
        for values in s.get("values") or ():
            yield {**tags, **dict(zip(s["columns"], values, strict=False))}


class HistoryReader:
    """Reads one district's readings; thread-safe (the API calls it from its worker threads)."""

    def __init__(self, client: QueryClient, district: District, *, downsample_after_s: float = 86_400,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.district = district
        self.downsample_after_ms = int(downsample_after_s * 1000)
        self._clock = clock
        self._derived = DerivedMetrics(district.sites)
        self._lock = threading.Lock()
        self._downsampled: tuple[float, bool] | None = None  # (checked at, CQs present)

    def history(self, site: str, metric: str, *, start_ms: int, end_ms: int, every_s: float,
                agg: str = "mean", device: str | None = None) -> HistoryResult:
        """Aggregates in [start, end) per ``every`` window, empty windows as None."""
        s = resolve_series(self.district, site, metric)
        check_device(device)
        if agg not in _RAW_FN:
            raise HistoryError(f"agg={agg!r}: expected one of {', '.join(AGGREGATES)}")
        if end_ms <= start_ms:
            raise HistoryError(f"start must be before end (start={start_ms} ms, end={end_ms} ms)")
        every_ms = round(every_s * 1000)
        if every_ms < 1000 or every_ms % 1000 or every_ms > MAX_EVERY_MS:
            raise HistoryError(f"every={format_duration(every_s)}: expected whole seconds from 1s to 366d")
        n = _bucket_count(start_ms, end_ms, every_ms)
        if n > MAX_POINTS:
            least = -(-(end_ms - start_ms) // (MAX_POINTS * 1000))  # whole seconds, rounded up
            while _bucket_count(start_ms, end_ms, least * 1000) > MAX_POINTS:
                least += 1
            raise HistoryError(f"every={format_duration(every_s)} gives {n} points over this range, "
                               f"more than {MAX_POINTS}; use every={format_duration(least)} or longer, "
                               "or a shorter range")
        first = start_ms - start_ms % every_ms  # InfluxDB aligns windows to the epoch
        buckets = list(range(first, end_ms, every_ms))
        use_ds = (agg in _PARTIALS and every_ms % HOUR_MS == 0
                  and end_ms - start_ms > self.downsample_after_ms and self._downsampling_ready())
        read = self._downsampled_values if use_ds else self._raw_values
        values = read(s, agg, start_ms, end_ms, every_ms, device)
        source = DOWNSAMPLED_RP if use_ds else "raw"
        if agg == "count":  # InfluxDB counts an empty window as 0; the contract says null
            values = {t: v for t, v in values.items() if v}
        scale = 1.0 if agg == "count" else s.divisor
        points = [(t, None if (v := values.get(t)) is None else v / scale) for t in buckets]
        return HistoryResult(site, metric, agg, every_ms / 1000, start_ms, end_ms, source, points)

    def window_points(self, site: str, metric: str, *, start_ms: int, end_ms: int,
                      device: str | None = None, limit: int = MAX_POINTS) -> list[tuple[int, float]]:
        """Raw (time ms, value) points in [start, end), oldest first, for trend fits."""
        s = resolve_series(self.district, site, metric)
        check_device(device)
        q = (f"SELECT {quote_ident(s.field)} AS \"value\" FROM {quote_ident(s.measurement)} "
             f"WHERE {self._where(device, start_ms, end_ms)} ORDER BY time DESC LIMIT {int(limit)}")
        rows = _rows(self.client.query(q, self._params(s, device)))
        points = [(_to_ms(r["time"]), float(r["value"]) / s.divisor)
                  for r in rows if r.get("value") is not None]
        return sorted(points)

    def latest(self, site: str, *, lookback_ms: int = 30 * 86_400_000) -> dict[str, tuple[float, int, str]]:
        """metric → (value, time ms, device) of the newest reading within ``lookback_ms``."""
        site_cfg = self.district.sites.get(site)
        if site_cfg is None:
            raise UnknownSite(f"unknown site {site!r}")
        now = int(self._clock() * 1000)
        stored = [m for m, spec in FAMILIES[site_cfg.family].items() if not spec.derived]
        statements = ";".join(
            f"SELECT last({quote_ident(m)}) AS {quote_ident(m)} FROM {quote_ident(site_cfg.family)} "
            f"WHERE \"site\" = $site AND time >= {now - lookback_ms}ms GROUP BY \"device\"" for m in stored)
        out: dict[str, tuple[float, int, str]] = {}
        for row in _rows(self.client.query(statements, {"site": site})):
            for m in stored:
                if row.get(m) is not None:
                    t = _to_ms(row["time"])
                    if m not in out or t > out[m][1]:
                        out[m] = (float(row[m]), t, str(row.get("device", "")))
        out |= self._derived.derive_latest(site, out)
        return out

    def last_seen(self, families: Iterable[str], *, lookback_ms: int = 86_400_000) -> list[tuple[str, str, int]]:
        """(site, device, time ms of its newest reading) for every device heard within ``lookback_ms``.

        The deadman's memory of devices starts empty in a new process; this seeds it, so a
        device that died around a restart is still reported silent.
        """
        now = int(self._clock() * 1000)
        newest: dict[tuple[str, str], int] = {}
        for family in families:
            stored = [m for m, spec in FAMILIES[family].items() if not spec.derived]
            statements = ";".join(
                f"SELECT last({quote_ident(m)}) FROM {quote_ident(family)} "
                f'WHERE time >= {now - lookback_ms}ms GROUP BY "site", "device"' for m in stored)
            for row in _rows(self.client.query(statements)):
                key = (str(row.get("site", "")), str(row.get("device", "")))
                t = _to_ms(row["time"])
                if all(key) and t > newest.get(key, -1):
                    newest[key] = t
        return [(site, device, t) for (site, device), t in newest.items()]

    # -- internals --------------------------------------------------------------------------------

    @staticmethod
    def _where(device: str | None, start_ms: int, end_ms: int) -> str:
        dev = ' AND "device" = $device' if device is not None else ""
        return f'"site" = $site{dev} AND time >= {int(start_ms)}ms AND time < {int(end_ms)}ms'

    @staticmethod
    def _params(s: Series, device: str | None) -> dict[str, str]:
        return {"site": s.site} | ({"device": device} if device is not None else {})

    def _grouped(self, select: str, source: str, device: str | None, start_ms: int, end_ms: int,
                 every_ms: int, s: Series) -> list[dict[str, Any]]:
        q = (f"SELECT {select} FROM {source} WHERE {self._where(device, start_ms, end_ms)} "
             f"GROUP BY time({every_ms}ms) fill(null)")
        return list(_rows(self.client.query(q, self._params(s, device))))

    def _raw_values(self, s: Series, agg: str, start_ms: int, end_ms: int, every_ms: int,
                    device: str | None) -> dict[int, float | None]:
        select = _RAW_FN[agg].format(f=quote_ident(s.field)) + ' AS "value"'
        rows = self._grouped(select, quote_ident(s.measurement), device, start_ms, end_ms, every_ms, s)
        return {_to_ms(r["time"]): r.get("value") for r in rows}

    def _downsampled_values(self, s: Series, agg: str, start_ms: int, end_ms: int, every_ms: int,
                            device: str | None) -> dict[int, float | None]:
        # Hours before `boundary` were finished by the continuous query at least an hour ago;
        # later points are read raw and merged into the window they fall in.
        now = int(self._clock() * 1000)
        boundary = now - now % HOUR_MS - HOUR_MS
        parts = _PARTIALS[agg]
        merged: dict[int, list[float | None]] = {}
        ranges = ((DOWNSAMPLED_RP, start_ms, min(end_ms, boundary)), ("raw", max(start_ms, boundary), end_ms))
        for where, lo, hi in ranges:
            if lo >= hi:
                continue
            if where == "raw":
                exprs, source = [raw for _, raw, _ in parts], quote_ident(s.measurement)
            else:
                exprs = [ds for ds, _, _ in parts]
                source = f"{quote_ident(DOWNSAMPLED_RP)}.{quote_ident(s.measurement)}"
            select = ", ".join(f'{e.format(f=quote_ident(s.field), n=s.field)} AS "c{i}"'
                               for i, e in enumerate(exprs))
            for row in self._grouped(select, source, device, lo, hi, every_ms, s):
                acc = merged.setdefault(_to_ms(row["time"]), [None] * len(parts))
                for i, (_, _, how) in enumerate(parts):
                    v = row.get(f"c{i}")
                    if v is not None:
                        acc[i] = v if acc[i] is None else _COMBINE[how](acc[i], v)  # type: ignore[arg-type]
        if agg == "mean":
            return {t: (a[0] / a[1] if a[0] is not None and a[1] else None) for t, a in merged.items()}
        return {t: a[0] for t, a in merged.items()}

    def _downsampling_ready(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._downsampled is not None and now - self._downsampled[0] < 300:
                return self._downsampled[1]
        ready = downsampling_present(self.client)
        with self._lock:
            self._downsampled = (now, ready)
        return ready


def _cq_name(family: str) -> str:
    return f"safewatch_{family}_1h"


def _existing_cqs(client: QueryClient) -> set[str]:
    names: set[str] = set()
    for s in client.query("SHOW CONTINUOUS QUERIES"):
        if s.get("name") == client.database:
            names.update(str(v[0]) for v in s.get("values") or ())
    return names


def downsampling_present(client: QueryClient) -> bool:
    """True when every family's hourly continuous query exists in the client's database."""
    try:
        return {_cq_name(f) for f in FAMILIES} <= _existing_cqs(client)
    except InfluxError as err:  # 2.x/3.x have no CQs; an outage just means raw reads for a while
        log.debug("cannot list continuous queries (%s); history reads raw points", err)
        return False


def _rollup(client: QueryClient, family: str, where: str) -> str:
    db = quote_ident(client.database)
    return (f"SELECT sum(*), count(*), max(*), min(*) INTO {db}.{quote_ident(DOWNSAMPLED_RP)}."
            f"{quote_ident(family)} FROM {db}..{quote_ident(family)}{where} GROUP BY time(1h), *")


def ensure_downsampling(client: QueryClient, district: District, *, now_ms: int | None = None,
                        rollup_hours: int | None = None) -> bool:
    """Create the hourly rollup (retention policy + one continuous query per family) where the
    server allows it (InfluxDB 1.x), and fill it: all past data for a new continuous query, the
    last 48 hours otherwise (readings replayed from the spool may have missed the CQ's window).

    Returns False, logging why, where the server refuses (2.x/3.x): history then reads raw points.
    ``district`` names the measurements (its families); the database is the client's. The rollup's
    policy keeps ``rollup_hours`` (None: forever; see ``store.retention``).
    """
    del district  # every family gets a rollup, so a site added later needs no new one
    now = wall_ms() if now_ms is None else now_ms
    hour = now - now % HOUR_MS
    db = quote_ident(client.database)
    try:
        ensure_policy(client, DOWNSAMPLED_RP, rollup_hours)
        existing = _existing_cqs(client)
        for family in FAMILIES:
            name = _cq_name(family)
            if name in existing:
                since = hour - _DOWNSAMPLE_REFRESH_MS
                client.query(_rollup(client, family, f" WHERE time >= {since}ms AND time < {hour}ms"))
                continue
            body = _rollup(client, family, "")
            client.query(f"CREATE CONTINUOUS QUERY {quote_ident(name)} ON {db} "
                         f"RESAMPLE EVERY 1h FOR 2h BEGIN {body} END")
            client.query(_rollup(client, family, f" WHERE time < {hour}ms"))
    except InfluxError as err:  # a server without CQs is fine: history reads raw points
        log.warning("InfluxDB database %s: no downsampling (%s); history reads raw points",
                    client.database, err)
        return False
    return True
