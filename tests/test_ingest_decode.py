"""Topic and payload decoding: every rejection reason of contract section 3, table-driven."""

from __future__ import annotations

import time

import pytest
import yaml

from domain import parse_district
from ingest.decode import MAX_FUTURE_MS, REASONS, Decoder

CONFIG = yaml.safe_load("""
district: dtest
departments: [{id: sec, name: Sector, kind: sector}, {id: office1, name: Office, kind: territorial}]
streets: [{id: st1, name: Street 1, office: office1}]
sites:
  - {id: GS-1, name: G, family: gas_station, street: st1, sector: sec}
  - {id: CV-1, name: C, family: crowd_venue, street: st1, sector: sec, capacity: 100, area_m2: 50}
  - {id: UG-1, name: U, family: underground, street: st1, sector: sec}
""")
NOW = 1_764_300_000_000
RECEIVED = NOW - 10
GS = "dtest/gas_station/GS-1/dev1/telemetry"


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    return Decoder(parse_district(CONFIG, "inline"))


# (case, topic, payload, kept readings as (ts, values), rejections as {reason: count})
CASES = [
    ("object", GS, b'{"ts": 1764299990000, "values": {"vapor_lel": 3.2, "tank_pressure_kpa": -1}}',
     [(1764299990000, {"vapor_lel": 3.2, "tank_pressure_kpa": -1.0})], {}),
    ("no ts means receipt time", GS, b'{"values": {"leak": 0}}', [(RECEIVED, {"leak": 0.0})], {}),
    ("rfc3339 utc", GS, b'{"ts": "2025-11-28T03:20:00Z", "values": {"leak": 1}}',
     [(1764300000000, {"leak": 1.0})], {}),
    ("rfc3339 offset, fraction", GS, b'{"ts": "2025-11-28T11:20:00.250+08:00", "values": {"leak": 1}}',
     [(1764300000250, {"leak": 1.0})], {}),
    ("array keeps each element", GS,
     b'[{"ts": 1764299990000, "values": {"vapor_lel": 1}}, {"ts": 1764299991000, "values": {"vapor_lel": 2}}]',
     [(1764299990000, {"vapor_lel": 1.0}), (1764299991000, {"vapor_lel": 2.0})], {}),
    ("invalid json", GS, b'{"values": {"vapor_lel": 3.2', [], {"invalid_json": 1}),
    ("not utf-8 json", GS, b"\xff\xfe", [], {"invalid_json": 1}),
    ("unknown site", "dtest/gas_station/GS-404/d/telemetry", b'{"values": {"leak": 0}}', [], {"unknown_site": 1}),
    ("family mismatch", "dtest/underground/GS-1/d/telemetry", b'{"values": {"leak": 0}}', [],
     {"family_mismatch": 1}),
    ("unknown family is a mismatch", "dtest/volcano/GS-1/d/telemetry", b'{"values": {"leak": 0}}', [],
     {"family_mismatch": 1}),
    ("wrong district", "other/gas_station/GS-1/d/telemetry", b'{"values": {"leak": 0}}', [],
     {"wrong_district": 1}),
    ("short topic", "dtest/gas_station/GS-1/telemetry", b"{}", [], {"bad_topic": 1}),
    ("unknown topic kind", "dtest/gas_station/GS-1/d/config", b"{}", [], {"bad_topic": 1}),
    ("empty device", "dtest/gas_station/GS-1//telemetry", b'{"values": {"leak": 0}}', [], {"bad_topic": 1}),
    ("backslash device", "dtest/gas_station/GS-1/a\\b/telemetry", b'{"values": {"leak": 0}}', [],
     {"bad_topic": 1}),
    ("unknown metric, rest kept", GS, b'{"ts": 1764299990000, "values": {"vapor_lel": 3, "colour": 1}}',
     [(1764299990000, {"vapor_lel": 3.0})], {"unknown_metric": 1}),
    ("metric of another family", GS, b'{"values": {"occupancy": 3}}', [], {"unknown_metric": 1}),
    ("derived metric is not accepted", "dtest/crowd_venue/CV-1/d/telemetry",
     b'{"values": {"occupancy_ratio": 0.5, "occupancy": 50}}', [(RECEIVED, {"occupancy": 50.0})],
     {"unknown_metric": 1}),
    ("non-numeric", GS, b'{"values": {"vapor_lel": "3.2", "tank_temp_c": null, "leak": true, "tank_level_pct": 7}}',
     [(RECEIVED, {"tank_level_pct": 7.0})], {"non_numeric": 3}),
    ("out of range", GS, b'{"values": {"vapor_lel": 100.5, "tank_pressure_kpa": -101, "tank_temp_c": 90}}',
     [(RECEIVED, {"tank_temp_c": 90.0})], {"out_of_range": 2}),
    ("binary flag must be 0 or 1", GS, b'{"values": {"leak": 0.5, "barrier_fault": 1.0}}',
     [(RECEIVED, {"barrier_fault": 1.0})], {"out_of_range": 1}),
    ("huge number", GS, b'{"values": {"vapor_lel": 1e400}}', [], None),
    ("future timestamp drops the element", GS,
     f'[{{"ts": {NOW + MAX_FUTURE_MS + 1000}, "values": {{"leak": 1}}}}, {{"values": {{"leak": 0}}}}]'.encode(),
     [(RECEIVED, {"leak": 0.0})], {"future_timestamp": 1}),
    ("just inside the future limit", GS, f'{{"ts": {NOW + MAX_FUTURE_MS - 1000}, "values": {{"leak": 1}}}}'.encode(),
     [(NOW + MAX_FUTURE_MS - 1000, {"leak": 1.0})], {}),
    ("naive rfc3339", GS, b'{"ts": "2025-11-28T03:20:00", "values": {"leak": 1}}', [], {"bad_timestamp": 1}),
    ("garbage ts", GS, b'{"ts": "yesterday", "values": {"leak": 1}}', [], {"bad_timestamp": 1}),
    ("nanosecond ts", GS, b'{"ts": 1764300000000000000, "values": {"leak": 1}}', [], {"bad_timestamp": 1}),
    ("boolean ts", GS, b'{"ts": true, "values": {"leak": 1}}', [], {"bad_timestamp": 1}),
    ("no values", GS, b'{"ts": 1764299990000}', [], {"bad_payload": 1}),
    ("empty values", GS, b'{"values": {}}', [], {"bad_payload": 1}),
    ("scalar payload", GS, b"42", [], {"bad_payload": 1}),
    ("empty array", GS, b"[]", [], {"bad_payload": 1}),
    ("array of junk, good kept", GS, b'[1, "x", {"values": {"leak": 1}}]', [(RECEIVED, {"leak": 1.0})],
     {"bad_payload": 2}),
]


@pytest.mark.parametrize(("case", "topic", "payload", "kept", "rejected"), CASES, ids=[c[0] for c in CASES])
def test_decode(decoder: Decoder, case: str, topic: str, payload: bytes, kept: list[tuple[int, dict[str, float]]],
                rejected: dict[str, int] | None) -> None:
    d = decoder.decode(topic, payload, RECEIVED, NOW)
    got = {r.reason: r.count for r in d.rejections}
    if rejected is None:  # orjson refuses 1e400 on some builds and reads inf on others: either way, refused
        assert not d.readings and set(got) <= {"invalid_json", "out_of_range"} and got
        return
    assert [(r.ts_ms, dict(r.values)) for r in d.readings] == kept
    assert got == rejected
    assert all(r.detail for r in d.rejections)
    assert set(got) <= set(REASONS)


def test_reading_carries_site_metadata(decoder: Decoder) -> None:
    (r,) = decoder.decode("dtest/underground/UG-1/sensor-7/telemetry", b'{"values": {"co_ppm": 12}}',
                          RECEIVED, NOW).readings
    assert (r.family, r.site, r.device, r.street) == ("underground", "UG-1", "sensor-7", "st1")


STATUS_CASES = [
    (b'{"state": "online"}', True, None),
    (b'{"state": "offline", "ts": 1764299990000}', False, None),
    (b'"offline"', False, None),
    (b'{"state": "sleepy"}', None, "bad_status"),
    (b'{"status": "online"}', None, "bad_status"),
    (b"offline", None, "invalid_json"),
]


@pytest.mark.parametrize(("payload", "online", "reason"), STATUS_CASES)
def test_status(decoder: Decoder, payload: bytes, online: bool | None, reason: str | None) -> None:
    d = decoder.decode("dtest/gas_station/GS-1/dev1/status", payload, RECEIVED, NOW)
    assert not d.readings
    if reason is None:
        assert d.status is not None and d.status.online is online and not d.rejections
        assert (d.status.site, d.status.device, d.status.family) == ("GS-1", "dev1", "gas_station")
    else:
        assert d.status is None and [r.reason for r in d.rejections] == [reason]


def test_oversized_payload_is_refused_without_parsing() -> None:
    small = Decoder(parse_district(CONFIG, "inline"), max_payload_bytes=1000)
    d = small.decode(GS, b"[" + b"1," * 1000 + b"1]", RECEIVED, NOW)
    assert [r.reason for r in d.rejections] == ["too_large"]


def test_large_array_is_one_rejection_per_reason(decoder: Decoder) -> None:
    items = ",".join('{"values": {"vapor_lel": 500, "leak": 1}}' for _ in range(3000))
    d = decoder.decode(GS, f"[{items}]".encode(), RECEIVED, NOW)
    assert len(d.readings) == 3000
    assert [(r.reason, r.count) for r in d.rejections] == [("out_of_range", 3000)]


def test_decoding_is_cheap(decoder: Decoder) -> None:
    """Not a benchmark: a guard against an accidental O(config) step per message."""
    payload = b'{"ts": 1764299990000, "values": {"vapor_lel": 3.2, "tank_pressure_kpa": 1.8, "tank_temp_c": 20}}'
    t0 = time.perf_counter()
    for _ in range(20_000):
        decoder.decode(GS, payload, RECEIVED, NOW)
    assert time.perf_counter() - t0 < 5.0
