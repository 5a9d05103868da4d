"""Retention (issue 10 point 4): InfluxDB 1.x policies with the configured durations; delivered
outbox rows pruned; the alert book never."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerting.service import AlertService
from domain.settings import Settings
from service.stack import StackInfo
from store.history import DOWNSAMPLED_RP, ensure_downsampling
from store.influx import InfluxClient, InfluxUnavailable
from store.retention import Retention, ensure_raw_retention, expire_raw, policies
from store.state import StateStore
from tests.support.faults import launched
from tests.support.lifecycle import batch, district

DAY_MS = 86_400_000


@pytest.mark.parametrize(("raw", "rollup", "want"), [
    ("90d", "1825d", Retention(90 * 24, 1825 * 24)),
    ("36h", "0", Retention(36, None)),
    ("0", "0", Retention(None, None)),
    ("2h", "2h", Retention(2, 2)),
])
def test_retention_settings(raw: str, rollup: str, want: Retention) -> None:
    assert Retention.parse(raw, rollup) == want


@pytest.mark.parametrize(("raw", "rollup", "error"), [
    ("90 days", "1825d", "SAFEWATCH_RETENTION_RAW='90 days'"),
    ("30m", "1825d", "SAFEWATCH_RETENTION_RAW='30m': a whole number of hours"),
    ("90d", "90d1s", "SAFEWATCH_RETENTION_ROLLUP='90d1s'"),
    ("90d", "30d", "SAFEWATCH_RETENTION_ROLLUP='30d' is shorter than SAFEWATCH_RETENTION_RAW='90d'"),
    ("0", "1825d", "is shorter than SAFEWATCH_RETENTION_RAW='0'"),
])
def test_bad_retention_settings_name_the_option(raw: str, rollup: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        Retention.parse(raw, rollup)


def durations(client: InfluxClient) -> dict[str, tuple[str, bool]]:
    return {n: (str(r["duration"]), bool(r["default"])) for n, r in policies(client).items()}


def test_policies_get_the_configured_durations_and_follow_a_change(stack: StackInfo, influx_db: str) -> None:
    client = InfluxClient(stack.influx_url, influx_db, None)
    try:
        for raw, rollup, raw_shards, rollup_d in (("90d", "1825d", "24h0m0s", "43800h0m0s"),
                                                  ("36h", "0", "1h0m0s", "0s")):  # a restart with other settings
            r = Retention.parse(raw, rollup)
            assert ensure_downsampling(client, district(), rollup_hours=r.rollup_h)
            assert ensure_raw_retention(client, r)
            got = durations(client)
            assert got[DOWNSAMPLED_RP] == (rollup_d, False)
            [default] = [n for n, (_, d) in got.items() if d]
            # The raw policy never refuses an old point: expire_raw drops its shards instead.
            assert got[default][0] == "0s"
            assert str(policies(client)[default]["shardGroupDuration"]) == raw_shards
    finally:
        client.close()


def _write(stack: StackInfo, db: str, lines: list[str]) -> None:
    r = httpx.post(f"{stack.influx_url}/write", params={"db": db, "precision": "ms"},
                   content="\n".join(lines).encode(), timeout=10.0)
    assert r.status_code == 204, r.text


def _count(client: InfluxClient) -> int:
    series = client.query("SELECT count(vapor_lel) FROM gas_station")
    return int(series[0]["values"][0][1]) if series else 0


def test_old_readings_are_accepted_then_their_shards_expire(stack: StackInfo, influx_db: str) -> None:
    client = InfluxClient(stack.influx_url, influx_db, None)
    try:
        r = Retention.parse("30d", "400d")
        assert ensure_downsampling(client, district(), rollup_hours=r.rollup_h)
        assert ensure_raw_retention(client, r)
        now = int(time.time() * 1000)
        # A device's buffer, an importer, a test with a fixed 2025 timestamp: all accepted.
        _write(stack, influx_db, [f"gas_station,site=GS-1,device=d1,street=s vapor_lel={i} {now - age}"
                                  for i, age in enumerate((400 * DAY_MS, 40 * DAY_MS, 3_600_000))])
        assert _count(client) == 3
        assert expire_raw(client, r, now) == 2  # the shards of the two points older than 30 days
        assert _count(client) == 1
        assert expire_raw(client, r, now) == 0  # idempotent
        assert expire_raw(client, Retention(None, None), now) == 0  # 0 keeps forever
    finally:
        client.close()


def test_serve_sets_up_retention_from_its_settings(stack: StackInfo, tmp_path: Path) -> None:
    with launched(stack, tmp_path, retention_raw="30d", retention_rollup="400d") as (_serve, _api, name):
        client = InfluxClient(stack.influx_url, name, None)
        try:
            got = durations(client)
        finally:
            client.close()
    assert got[DOWNSAMPLED_RP][0] == "9600h0m0s"
    assert [d for d, default in got.values() if default] == ["0s"]  # raw: shards expire by job


def test_housekeeping_prunes_delivered_notifications_and_never_the_book(store: StateStore) -> None:
    store.create_subscription(department="commerce", channel="webhook", url="http://203.0.113.9/hook")
    svc = AlertService(district(), store, None, None, CollectorRegistry())
    svc.handle_batch(batch(vapor_lel=30, leak=1))
    items = store.outbox_items()
    assert len(items) == 2
    now = int(time.time() * 1000)
    store.mark_delivered(items[0].id, now, 1)
    alerts_before = [(a.id, [e.type for e in store.get_alert(a.id).events]) for a in store.list_alerts()]  # type: ignore[union-attr]
    svc.housekeeping(now + 6 * DAY_MS)  # younger than a week: kept
    assert len(store.outbox_items()) == 2
    svc.housekeeping(now + 30 * DAY_MS)
    left: list[Any] = store.outbox_items()
    assert [i.id for i in left] == [items[1].id]  # the undelivered one stays until it is sent
    assert [(a.id, [e.type for e in store.get_alert(a.id).events])  # type: ignore[union-attr]
            for a in store.list_alerts()] == alerts_before


class _Influx:
    """InfluxDB as the retention set-up sees it: down, or up at some version."""

    def __init__(self) -> None:
        self.version: str | None = None  # None: down

    def ping(self) -> str:
        if self.version is None:
            raise InfluxUnavailable("InfluxDB unreachable")
        return self.version


@pytest.mark.parametrize("version", ["1.8.10", "2.7.1"])
def test_retention_set_up_is_retried_by_the_hourly_job_when_influxdb_was_down_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    from service import runtime as rt
    influx = _Influx()
    calls: list[str] = []

    def downsampling(client: Any, district: Any, *, rollup_hours: int | None) -> bool:
        calls.append("rollup")
        return influx.version is not None and influx.version.startswith("1.")

    def raw(client: Any, retention: Retention) -> bool:
        calls.append("raw")
        return influx.version is not None and influx.version.startswith("1.")

    expired: list[Retention] = []
    monkeypatch.setattr(rt, "ensure_downsampling", downsampling)
    monkeypatch.setattr(rt, "ensure_raw_retention", raw)
    def expire(client: Any, retention: Retention) -> int:
        expired.append(retention)
        return 0

    monkeypatch.setattr(rt, "expire_raw", expire)
    settings = Settings(data_dir=tmp_path, retention_raw="30d", retention_rollup="400d",
                        influx_url="http://127.0.0.1:9", mqtt_url="mqtt://127.0.0.1:9")
    runtime = rt.Runtime(settings, district(), "token")  # not started: nothing connects
    real = (runtime.influx, runtime.influx_write)
    runtime.influx = runtime.influx_write = influx  # type: ignore[assignment]
    try:
        runtime._ensure_downsampling()  # at start, InfluxDB down
        assert calls == ["rollup", "raw"] and runtime._retention is None
        runtime.expire_readings()  # still down: tried again, nothing expired
        assert calls == ["rollup", "raw"] * 2 and expired == []
        influx.version = version  # back
        runtime.expire_readings()
        assert calls == ["rollup", "raw"] * 3
        runtime.expire_readings()
        runtime.expire_readings()
        assert calls == ["rollup", "raw"] * 3  # set up once it answered: never again
        if version.startswith("1."):
            assert expired == [Retention(30 * 24, 400 * 24)] * 3
        else:  # 2.x/3.x have no policies over the v1 API: the bucket's retention applies
            assert expired == []
    finally:
        runtime.dead_letters.close()
        for client in real:
            client.close()
