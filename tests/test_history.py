"""store/history.py against the session's real InfluxDB: aggregates checked against values computed
here from the same readings, written with line protocol straight over HTTP (tests/support/helpers.py)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence

import pytest
import yaml

from domain.district import District, parse_district
from service.stack import StackInfo
from store.history import (
    MAX_POINTS,
    HistoryError,
    HistoryReader,
    UnknownSite,
    downsampling_present,
    ensure_downsampling,
    quote_ident,
)
from store.influx import InfluxClient
from tests.support.helpers import influx_write

DISTRICT = """
district: {name}
timezone: Asia/Shanghai
departments:
  - {{id: commerce, name: 商务委, kind: sector}}
  - {{id: street_a, name: A街道办, kind: territorial}}
streets: [{{id: a, name: A街道, office: street_a}}]
sites:
  - {{id: GS-001, name: 加油站, family: gas_station, street: a, sector: commerce}}
  - {{id: CV-001, name: 剧院, family: crowd_venue, street: a, sector: commerce, capacity: 400, area_m2: 200}}
"""
MINUTE = 60_000
HOUR = 3_600_000


def influx_p95(values: Sequence[float]) -> float | None:
    """InfluxQL's PERCENTILE: nearest rank, index floor(n * p / 100 + 0.5) - 1 of the sorted values."""
    i = math.floor(len(values) * 95 / 100 + 0.5) - 1
    return sorted(values)[i] if 0 <= i < len(values) else None


EXPECTED: dict[str, Callable[[list[tuple[int, float]]], float | None]] = {
    "mean": lambda pts: sum(v for _, v in pts) / len(pts),
    "max": lambda pts: max(v for _, v in pts),
    "min": lambda pts: min(v for _, v in pts),
    "last": lambda pts: max(pts)[1],
    "count": lambda pts: float(len(pts)),
    "p95": lambda pts: influx_p95([v for _, v in pts]),
}


def expected(readings: list[tuple[int, str, float]], agg: str, buckets: list[int], every: int,
             device: str | None = None) -> list[float | None]:
    out: list[float | None] = []
    for b in buckets:
        pts = [(t, v) for t, dev, v in readings if b <= t < b + every and device in (None, dev)]
        out.append(EXPECTED[agg](pts) if pts else None)
    return out


def same(got: Sequence[float | None], want: Sequence[float | None]) -> bool:
    """Equal lists of aggregates: None where None, floats to 1e-9 (sums may add up in another order)."""
    return len(got) == len(want) and all(
        (g is None and w is None) or (g is not None and w is not None and math.isclose(g, w, rel_tol=1e-9))
        for g, w in zip(got, want, strict=True))


def line(site: str, device: str, t: int, value: float, metric: str = "vapor_lel",
         family: str = "gas_station") -> str:
    return f"{family},site={site},device={device},street=a {metric}={value!r} {t}"


@pytest.fixture
def history_district(influx_db: str) -> District:
    return parse_district(yaml.safe_load(DISTRICT.format(name=influx_db)))


@pytest.fixture
def client(stack: StackInfo, influx_db: str) -> InfluxClient:
    return InfluxClient(stack.influx_url, influx_db, None)


@pytest.fixture
def readings(stack: StackInfo, influx_db: str) -> tuple[int, list[tuple[int, str, float]]]:
    """Ten one-minute windows from an hour ago: two devices, irregular times, windows 2 and 7 empty."""
    rng = random.Random(7)
    base = (int(time.time() * 1000) - HOUR) // MINUTE * MINUTE
    out: list[tuple[int, str, float]] = []
    for w in range(10):
        if w in (2, 7):
            continue
        for _ in range(1 if w == 5 else rng.randint(2, 25)):
            t = base + w * MINUTE + rng.randrange(0, MINUTE)
            if any(t == u for u, _, _ in out):
                continue  # one reading per instant, so that "last" has one answer
            out.append((t, rng.choice(["d1", "d2"]), round(rng.uniform(0, 100), 3)))
    influx_write(stack, influx_db, [line("GS-001", dev, t, v) for t, dev, v in out])
    # another site's readings in the same measurement must never leak into GS-001's history
    influx_write(stack, influx_db, [line("GS-002", "d1", base + 30_000, 1e6 - 1)])
    return base, out


@pytest.mark.parametrize("agg", ["mean", "max", "min", "last", "count", "p95"])
@pytest.mark.parametrize("device", [None, "d1"])
def test_aggregates_match_values_computed_from_the_readings(client, history_district, readings, agg, device):
    base, rows = readings
    reader = HistoryReader(client, history_district)
    res = reader.history("GS-001", "vapor_lel", start_ms=base, end_ms=base + 10 * MINUTE, every_s=60, agg=agg,
                         device=device)
    buckets = [base + i * MINUTE for i in range(10)]
    assert [t for t, _ in res.points] == buckets
    want = expected(rows, agg, buckets, MINUTE, device)
    assert same([v for _, v in res.points], want), ([v for _, v in res.points], want)
    assert res.points[2][1] is None and res.points[7][1] is None  # empty windows are null, count too
    assert (res.source, res.every) == ("raw", "1m")


def test_unaligned_start_and_five_minute_windows(client, history_district, readings):
    base, rows = readings
    reader = HistoryReader(client, history_district)
    start = base + 90_000  # InfluxDB aligns windows to the epoch; the first one begins before start
    res = reader.history("GS-001", "vapor_lel", start_ms=start, end_ms=base + 10 * MINUTE, every_s=300,
                         agg="max")
    first = start // (5 * MINUTE) * (5 * MINUTE)
    buckets = list(range(first, base + 10 * MINUTE, 5 * MINUTE))
    assert [t for t, _ in res.points] == buckets and buckets[0] < start
    kept = [r for r in rows if r[0] >= start]
    assert same([v for _, v in res.points], expected(kept, "max", buckets, 5 * MINUTE))


@pytest.mark.parametrize("device", ["d1' OR '1'='1", 'd1" OR "a"="a', "d1 OR 1=1", "设备-1 $site"])
def test_a_hostile_device_filter_matches_nothing(client, history_district, readings, device):
    base, _ = readings
    res = HistoryReader(client, history_district).history(
        "GS-001", "vapor_lel", start_ms=base, end_ms=base + 10 * MINUTE, every_s=60, agg="count", device=device)
    assert [v for _, v in res.points] == [None] * 10  # a bound parameter, compared as a whole string


def test_derived_metric_is_the_stored_one_over_the_site_constant(stack, influx_db, client, history_district):
    t0 = (int(time.time() * 1000) - 10 * MINUTE) // MINUTE * MINUTE
    influx_write(stack, influx_db, [
        line("CV-001", "gate", t0 + 1000, 100, "occupancy", "crowd_venue"),
        line("CV-001", "gate", t0 + 2000, 300, "occupancy", "crowd_venue"),
    ])
    reader = HistoryReader(client, history_district)
    for metric, divisor in (("occupancy_ratio", 400), ("density_per_m2", 200)):
        res = reader.history("CV-001", metric, start_ms=t0, end_ms=t0 + MINUTE, every_s=60, agg="max")
        assert len(res.points) == 1 and res.points[0][0] == t0
        assert res.points[0][1] == pytest.approx(300 / divisor)
        count = reader.history("CV-001", metric, start_ms=t0, end_ms=t0 + MINUTE, every_s=60, agg="count")
        assert count.points == [(t0, 2)]
    latest = reader.latest("CV-001")
    assert latest["occupancy"] == (300.0, t0 + 2000, "gate")
    assert latest["occupancy_ratio"][0] == pytest.approx(0.75)


def test_latest_per_metric_takes_the_newest_device(stack, influx_db, client, history_district):
    now = int(time.time() * 1000)
    influx_write(stack, influx_db, [
        line("GS-001", "d1", now - 5000, 3.0), line("GS-001", "d2", now - 1000, 4.0),
        line("GS-001", "d1", now - 2000, 55.5, "tank_level_pct"),
    ])
    latest = HistoryReader(client, history_district).latest("GS-001")
    assert latest == {"vapor_lel": (4.0, now - 1000, "d2"), "tank_level_pct": (55.5, now - 2000, "d1")}


HOSTILE = [
    'GS-001" OR "a"="a', "GS-001' OR 1=1 --", "GS 001", "SELECT", "DROP DATABASE x", 'vapor_lel"; DROP', "",
    "GS-001\\", "time", "gas_station", "GS-001\n", "ＧＳ-001",
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_site_or_metric_is_refused_before_any_query(history_district, bad):
    class NoQueries:
        database = "never"

        def query(self, influxql, params=None):
            raise AssertionError(f"a refused request reached InfluxDB: {influxql}")

    reader = HistoryReader(NoQueries(), history_district)
    with pytest.raises(UnknownSite):
        reader.history(bad, "vapor_lel", start_ms=0, end_ms=MINUTE, every_s=60)
    with pytest.raises(HistoryError, match="metric="):
        reader.history("GS-001", bad, start_ms=0, end_ms=MINUTE, every_s=60)
    with pytest.raises((HistoryError, UnknownSite)):
        reader.window_points(bad, bad, start_ms=0, end_ms=MINUTE)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"every_s": 0.5}, "whole seconds"),
    ({"every_s": 1.5}, "whole seconds"),
    ({"every_s": 400 * 86400}, "whole seconds"),
    ({"end_ms": 0}, "start must be before end"),
    ({"every_s": 1, "end_ms": (MAX_POINTS + 1) * 1000}, f"more than {MAX_POINTS}; use every=2s"),
    ({"agg": "median"}, "agg='median'"),
    ({"device": "d1\n"}, "device="),
    ({"device": "d1\\"}, "device="),
    ({"device": "a" * 129}, "device="),
])
def test_bad_parameters_are_refused_naming_the_option(history_district, kwargs, message):
    args = {"start_ms": 0, "end_ms": 3_600_000, "every_s": 60.0} | kwargs
    reader = HistoryReader(None, history_district)  # type: ignore[arg-type]
    with pytest.raises(HistoryError, match=message.replace("(", r"\(")):
        reader.history("GS-001", "vapor_lel", **args)


def test_exactly_max_points_is_allowed(client, history_district):
    res = HistoryReader(client, history_district).history(
        "GS-001", "vapor_lel", start_ms=0, end_ms=MAX_POINTS * 1000, every_s=1, agg="count")
    assert len(res.points) == MAX_POINTS and all(v is None for _, v in res.points)


def test_quote_ident_escapes_quotes_and_backslashes():
    assert quote_ident('a"b\\c') == '"a\\"b\\\\c"'


def test_long_ranges_read_the_hourly_rollup_and_agree_with_raw_points(stack, influx_db, client,
                                                                       history_district):
    rng = random.Random(3)
    now = int(time.time() * 1000)
    start = (now - 3 * 86_400_000) // (6 * HOUR) * (6 * HOUR)
    rows = [(t, rng.choice(["d1", "d2"]), round(rng.uniform(0, 50), 2))
            for t in range(start + 7_000, now, 17 * MINUTE)]
    influx_write(stack, influx_db, [line("GS-001", dev, t, v) for t, dev, v in rows])
    assert not downsampling_present(client)
    assert ensure_downsampling(client, history_district)
    assert downsampling_present(client)
    assert ensure_downsampling(client, history_district)  # idempotent: refreshes the last 48 h
    reader = HistoryReader(client, history_district)
    raw_reader = HistoryReader(client, history_district, downsample_after_s=1e12)
    buckets = list(range(start, now, 6 * HOUR))
    for agg in ("mean", "max", "min", "count"):
        res = reader.history("GS-001", "vapor_lel", start_ms=start, end_ms=now, every_s=6 * 3600, agg=agg)
        raw = raw_reader.history("GS-001", "vapor_lel", start_ms=start, end_ms=now, every_s=6 * 3600, agg=agg)
        assert (res.source, raw.source) == ("downsampled_1h", "raw")
        want = expected(rows, agg, buckets, 6 * HOUR)
        assert same([v for _, v in res.points], want), (agg, res.points, want)
        assert same([v for _, v in raw.points], want), (agg, raw.points, want)
    for agg in ("last", "p95"):  # not exact from hourly partials: always raw
        assert reader.history("GS-001", "vapor_lel", start_ms=start, end_ms=now, every_s=6 * 3600,
                              agg=agg).source == "raw"
    short = reader.history("GS-001", "vapor_lel", start_ms=now - HOUR, end_ms=now, every_s=3600)
    assert short.source == "raw"
