"""Line protocol: escaping rules, and a property test round-tripping through a real InfluxDB."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.readings import Reading
from service.stack import StackInfo
from store.lineproto import ReadingEncoder, escape_key, point_line, reading_line
from tests.support.helpers import create_database, influx_rows, influx_write

LINES = [
    (Reading("gas_station", "GS-1", "d1", "st1", 1764300000000, {"vapor_lel": 3.2, "leak": 1.0}),
     b"gas_station,device=d1,site=GS-1,street=st1 vapor_lel=3.2,leak=1.0 1764300000000"),
    (Reading("underground", "UG 1", "a,b=c", "", 5, {"co_ppm": 1e-07}),
     b"underground,device=a\\,b\\=c,site=UG\\ 1 co_ppm=1e-07 5"),
]


@pytest.mark.parametrize(("reading", "line"), LINES)
def test_reading_line(reading: Reading, line: bytes) -> None:
    assert reading_line(reading) == line


POINTS = [
    (("alert_event", {"site": "S", "rule": "r", "empty": ""}, {"value": 2.5, "alert_id": 'a"b\\c'}, 7),
     b'alert_event,rule=r,site=S value=2.5,alert_id="a\\"b\\\\c" 7'),
    (("m m,x", {"k=": "v v"}, {"f": 3, "ok": True}, 1), b"m\\ m\\,x,k\\==v\\ v f=3.0,ok=true 1"),
]


@pytest.mark.parametrize(("args", "line"), POINTS)
def test_point_line(args: tuple[Any, ...], line: bytes) -> None:
    assert point_line(*args) == line


@pytest.mark.parametrize("bad", ["", "a\nb", "trailing\\", "a\\ b", "a\\,b", "a\\=b", "a\\\\b"])
def test_unrepresentable_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="tag"):
        escape_key(bad, "tag x")


@pytest.mark.parametrize(("args", "match"), [
    (("#m", {}, {"f": 1}, 1), "comment"),
    (("m", {}, {}, 1), "no fields"),
    (("m", {}, {"f": float("nan")}, 1), "finite"),
    (("m", {}, {"f": float("inf")}, 1), "finite"),
    (("m", {}, {"s": "two\nlines"}, 1), "newline"),
])
def test_unwritable_points_are_refused(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        point_line(*args)


def test_encoder_cache_is_bounded() -> None:
    enc = ReadingEncoder(max_series=10)
    for n in range(25):
        enc.encode(Reading("gas_station", "S", f"d{n}", "st", n, {"leak": 0.0}))
    assert len(enc._prefixes) <= 10


# Names that line protocol can carry: no control characters, no backslash before a special
# character or at the end (refused above). Everything else, unicode included, must survive.
names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: not s.endswith("\\") and not any(f"\\{c}" in s for c in ' ,="\\'))
values = st.floats(allow_nan=False, allow_infinity=False, width=64)
_counter = itertools.count()


metrics = names.filter(lambda s: s not in ("time", "site", "device", "street"))
points = st.lists(st.tuples(names, names, names, metrics, values), min_size=1, max_size=40)


@pytest.mark.integration
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=points)
def test_round_trip_through_influxdb(stack: StackInfo, influx_db: str,
                                     batch: list[tuple[str, str, str, str, float]]) -> None:
    measurement = f"m{next(_counter)}"  # a fresh measurement per example: no schema clashes
    base = 1_764_300_000_000
    lines = [point_line(measurement, {"site": s, "device": d, "street": t}, {m: v}, base + i).decode()
             for i, (s, d, t, m, v) in enumerate(batch)]
    influx_write(stack, influx_db, lines)
    rows = influx_rows(stack, influx_db, f'SELECT * FROM "{measurement}"')
    assert len(rows) == len(batch)
    for row, (site, device, street, metric, value) in zip(rows, batch, strict=True):
        assert (row["site"], row["device"], row["street"]) == (site, device, street)
        assert float(row[metric]) == value  # InfluxDB's JSON prints 6e16 as an integer


@pytest.fixture(scope="module")
def influx_db(stack: StackInfo) -> str:
    """One database for the whole property test (hypothesis reuses function fixtures anyway)."""
    create_database(stack, "lineproto_props")
    return "lineproto_props"
