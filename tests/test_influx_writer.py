"""InfluxClient and InfluxWriter against the session's real InfluxDB."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from service.stack import StackInfo, free_port
from store.deadletters import DeadLetters
from store.influx import InfluxClient, InfluxQueryError, InfluxUnavailable, InfluxWriter
from store.lineproto import point_line
from tests.support.helpers import influx_rows


def lines(n: int, start: int = 0, measurement: str = "gas_station") -> list[bytes]:
    return [point_line(measurement, {"site": "S", "device": f"d{i % 7}"}, {"vapor_lel": float(i)},
                       1_764_300_000_000 + i) for i in range(start, start + n)]


def count(stack: StackInfo, db: str, measurement: str = "gas_station") -> int:
    rows = influx_rows(stack, db, f'SELECT COUNT("vapor_lel") FROM "{measurement}"')
    return int(rows[0]["count"]) if rows else 0


@pytest.fixture
def client(stack: StackInfo, district: str):
    c = InfluxClient(stack.influx_url, district)
    c.ensure_database()
    yield c
    c.query(f'DROP DATABASE "{district}"', database=None)
    c.close()


def test_ensure_database_is_idempotent_and_query_reports_errors(client: InfluxClient) -> None:
    client.ensure_database()
    assert client.version and client.version.startswith("1.")
    names = {v[0] for s in client.query("SHOW DATABASES", database=None) for v in s["values"]}
    assert client.database in names
    with pytest.raises(InfluxQueryError, match="SELEKT"):
        client.query("SELEKT 1")


def test_query_binds_parameters(stack: StackInfo, client: InfluxClient) -> None:
    client.write(b"\n".join(lines(3)))
    (series,) = client.query('SELECT "vapor_lel" FROM "gas_station" WHERE "device" = $d', {"d": "d1"})
    assert series["values"] == [[1_764_300_000_001, 1.0]]


def test_unreachable_server_is_unavailable() -> None:
    c = InfluxClient(f"http://127.0.0.1:{free_port()}", "x", timeout=2.0)
    with pytest.raises(InfluxUnavailable, match="unreachable"):
        c.ping()


def test_writer_batches_and_reports_durability(stack: StackInfo, client: InfluxClient, tmp_path: Path) -> None:
    w = InfluxWriter(client, tmp_path / "spool", batch_points=500, flush_interval=0.05)
    w.start()
    durable = threading.Semaphore(0)
    for k in range(20):
        w.put(lines(100, start=k * 100), durable.release)
    for _ in range(20):
        assert durable.acquire(timeout=10), "on_durable not called"
    w.stop()
    assert count(stack, client.database) == 2000
    assert w.spool_depth == 0


def test_flush_by_age_without_reaching_batch_size(stack: StackInfo, client: InfluxClient, tmp_path: Path) -> None:
    w = InfluxWriter(client, tmp_path / "spool", batch_points=5000, flush_interval=0.1)
    w.start()
    done = threading.Event()
    t0 = time.monotonic()
    w.put(lines(3), done.set)
    assert done.wait(5)
    assert 0.05 < time.monotonic() - t0 < 2.0
    w.stop()
    assert count(stack, client.database) == 3


def test_rejected_points_are_isolated_and_dead_lettered(stack: StackInfo, client: InfluxClient,
                                                        tmp_path: Path) -> None:
    # The same shard (1.x keeps field types per shard) learns vapor_lel as a string field.
    client.write(b'gas_station,site=S,device=d0 vapor_lel="text" 1764299999999')
    dead = DeadLetters(tmp_path / "dead")
    w = InfluxWriter(client, tmp_path / "spool", batch_points=1000, dead_letters=dead)
    w.start()
    batch = lines(50)
    batch[17] = b"gas_station,site=S garbage"
    w.put(batch)
    assert w.flush(10)
    w.stop()
    # Every float point clashes with the string field: all 50 refused, none retried forever.
    records = [json.loads(x) for x in dead.path.read_text().splitlines()]
    assert len(records) == 50
    assert {r["reason"] for r in records} == {"influxdb_rejected"}
    assert any("garbage" in r["payload"] for r in records)


def test_one_bad_point_does_not_cost_the_batch(stack: StackInfo, client: InfluxClient, tmp_path: Path) -> None:
    dead = DeadLetters(tmp_path / "dead")
    w = InfluxWriter(client, tmp_path / "spool", dead_letters=dead)
    w.start()
    batch = lines(1000)
    batch[600] = b"gas_station,site=S,device=x vapor_lel=1.0 notatime"
    w.put(batch)
    assert w.flush(10)
    w.stop()
    assert count(stack, client.database) == 999
    (record,) = [json.loads(x) for x in dead.path.read_text().splitlines()]
    assert "notatime" in record["payload"] and "400" in record["detail"]


def test_unreachable_influx_spools_in_order_and_replays_on_restart(stack: StackInfo, client: InfluxClient,
                                                                   tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    down = InfluxClient(f"http://127.0.0.1:{free_port()}", client.database, timeout=1.0)
    w = InfluxWriter(down, spool, batch_points=100, retry_delays=(0.01,))
    w.start()
    durable = threading.Semaphore(0)
    for k in range(5):
        w.put(lines(100, start=k * 100), durable.release)
    for _ in range(5):
        assert durable.acquire(timeout=20), "spooled points must count as durable"
    assert w.spool_depth == 500 and w.last_error and "unreachable" in w.last_error
    w.stop()
    assert sorted(p.name for p in spool.iterdir())[0].startswith("0000000000000001-")

    w2 = InfluxWriter(client, spool, batch_points=100)
    assert w2.spool_depth == 500  # picked up from disk
    w2.start()
    w2.put(lines(10, start=500))
    deadline = time.monotonic() + 20
    while (w2.spool_depth or count(stack, client.database) < 510) and time.monotonic() < deadline:
        time.sleep(0.1)
    w2.stop()
    assert count(stack, client.database) == 510
    assert not list(spool.iterdir())


def test_put_blocks_when_too_much_is_pending(client: InfluxClient, tmp_path: Path) -> None:
    down = InfluxClient(f"http://127.0.0.1:{free_port()}", "x", timeout=1.0)
    w = InfluxWriter(down, tmp_path / "spool", batch_points=10, max_pending_points=20)  # not started
    w.put(lines(20))
    blocked = threading.Thread(target=w.put, args=(lines(1),), daemon=True)
    blocked.start()
    blocked.join(0.5)
    assert blocked.is_alive(), "put must hold back the caller"
    w.start()  # the thread drains to the spool and lets the caller in
    blocked.join(10)
    assert not blocked.is_alive()
    w.stop()
