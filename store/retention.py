"""How long InfluxDB keeps readings: raw points for ``retention_raw``, the hourly rollup for
``retention_rollup`` (``SAFEWATCH_RETENTION_RAW``/``_ROLLUP``, defaults 90 days and 5 years).

On InfluxDB 1.x the rollup is a retention policy, ``downsampled_1h`` (filled by the continuous
queries of ``store.history``), with the rollup duration. The raw readings are not: a policy's
duration also makes InfluxDB *refuse* points older than it ("points beyond retention policy
dropped"), and the contract accepts a reading of any past time (a device uploading what it
buffered, an importer, a test with a fixed timestamp) and never loses an accepted one. So the
database's default policy keeps an infinite duration with shard groups sized for the raw
retention, and ``expire_raw`` (a scheduler job, hourly and at start) drops the default policy's
shards that ended before ``now - retention_raw``: whole shards, as InfluxDB's own enforcement
would, and a point written with an older time is stored until the next run.

InfluxDB 2.x and 3.x have no retention policies over the v1 API: there a bucket has one
retention period, set when it is created (``influx bucket create --retention 90d`` or the
bucket's settings), and the 1.x rollup does not exist (history reads raw points). ``serve``
logs this at start instead of failing. The alert book, hazards and the audit trail live in the
state database and are never pruned (they are records); only delivered outbox rows are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.clock import now_ms as wall_ms  # the one clock (``now_ms`` names a parameter here)
from domain.durations import parse_duration
from store.influx import InfluxError

log = logging.getLogger(__name__)

HOUR_S = 3600
DAY_H = 24


class Client(Protocol):
    database: str

    def query(self, influxql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...


class ShardClient(Protocol):
    """``SHOW SHARDS``/``DROP SHARD`` are server-wide: sent without a database."""

    database: str

    def query(self, influxql: str, params: Mapping[str, Any] | None = None, *,
              database: str | bool | None = True) -> list[dict[str, Any]]: ...


def retention_hours(value: str, option: str) -> int | None:
    """Whole hours of a retention setting (None: keep forever, written ``0``); ValueError names the option."""
    if value.strip() in ("0", "inf", "INF"):
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{option}={value!r}: {exc}, or 0 to keep forever") from None
    if seconds < HOUR_S or seconds % HOUR_S:
        raise ValueError(f"{option}={value!r}: a whole number of hours, at least 1h (InfluxDB's minimum), "
                         "or 0 to keep forever")
    return int(seconds // HOUR_S)


@dataclass(frozen=True)
class Retention:
    raw_h: int | None  # None: forever
    rollup_h: int | None

    @classmethod
    def parse(cls, raw: str, rollup: str) -> Retention:
        r = cls(retention_hours(raw, "SAFEWATCH_RETENTION_RAW"), retention_hours(rollup, "SAFEWATCH_RETENTION_ROLLUP"))
        if r.rollup_h is not None and (r.raw_h is None or r.rollup_h < r.raw_h):
            raise ValueError(f"SAFEWATCH_RETENTION_ROLLUP={rollup!r} is shorter than SAFEWATCH_RETENTION_RAW={raw!r}: "
                             "the hourly rollup is what outlives the raw readings")
        return r


def influx_duration(hours: int | None) -> str:
    return "INF" if hours is None else f"{hours}h"


def shard_duration(hours: int | None) -> str:
    """InfluxDB's own default shard group duration for a policy of that length."""
    if hours is not None and hours < 2 * DAY_H:
        return "1h"
    if hours is not None and hours <= 180 * DAY_H:
        return "1d"
    return "7d"


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def policies(client: Client) -> dict[str, dict[str, Any]]:
    """Retention policies of the client's database: name → row (``duration``, ``default``, ...)."""
    out: dict[str, dict[str, Any]] = {}
    for series in client.query(f"SHOW RETENTION POLICIES ON {_quote(client.database)}"):
        cols = series.get("columns", [])
        for values in series.get("values", []):
            row = dict(zip(cols, values, strict=False))
            out[str(row["name"])] = row
    return out


def ensure_policy(client: Client, name: str, hours: int | None, *, default: bool = False,
                  shard_hours: int | None = None) -> None:
    """Creates or alters ``name`` to last ``hours`` (INF for None), its shard groups sized for
    ``shard_hours`` (default: ``hours``); raises InfluxError."""
    db = _quote(client.database)
    verb = "ALTER" if name in policies(client) else "CREATE"
    shards = shard_duration(hours if shard_hours is None else shard_hours)
    # InfluxQL wants DURATION, REPLICATION, SHARD DURATION, DEFAULT in this order.
    spec = f"DURATION {influx_duration(hours)}{' REPLICATION 1' if verb == 'CREATE' else ''} " \
           f"SHARD DURATION {shards}{' DEFAULT' if default else ''}"
    client.query(f"{verb} RETENTION POLICY {_quote(name)} ON {db} {spec}")


def default_policy(client: Client) -> str:
    return next((n for n, row in policies(client).items() if row.get("default")), "autogen")


def ensure_raw_retention(client: Client, retention: Retention) -> bool:
    """Gives the database's default policy (raw readings) an infinite duration and shard groups
    sized for the raw retention (``expire_raw`` then drops old shards); False (logged) where the
    server has no retention policies (2.x/3.x: the bucket's retention period applies)."""
    try:
        default = default_policy(client)
        ensure_policy(client, default, None, default=True, shard_hours=retention.raw_h)
    except InfluxError as err:
        log.warning("InfluxDB database %s: raw retention not set (%s); on InfluxDB 2.x/3.x set the bucket's "
                    "retention period to %s yourself", client.database, err, influx_duration(retention.raw_h))
        return False
    log.info("InfluxDB database %s: raw readings kept %s, hourly rollup %s", client.database,
             influx_duration(retention.raw_h), influx_duration(retention.rollup_h))
    return True


def _epoch_ms(value: Any) -> int | None:
    """SHOW SHARDS times: RFC 3339 text (``2025-11-24T00:00:00Z``) or epoch ms."""
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value:
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return None
    return None


def expire_raw(client: ShardClient, retention: Retention, now_ms: int | None = None) -> int:
    """Drops the shards of the database's default policy (raw readings) that ended before
    ``now - retention_raw``; returns how many. Raises InfluxError (the job logs and retries)."""
    if retention.raw_h is None:
        return 0
    now = wall_ms() if now_ms is None else now_ms
    cutoff = now - retention.raw_h * HOUR_S * 1000
    default = default_policy(client)
    dropped = 0
    for series in client.query("SHOW SHARDS", database=False):
        if series.get("name") != client.database:
            continue
        cols = series.get("columns", [])
        for values in series.get("values", []):
            row = dict(zip(cols, values, strict=False))
            end = _epoch_ms(row.get("end_time"))
            if row.get("retention_policy") == default and end is not None and end <= cutoff:
                client.query(f"DROP SHARD {int(row['id'])}", database=False)
                dropped += 1
    if dropped:
        log.info("InfluxDB database %s: dropped %d raw shards older than %s", client.database, dropped,
                 influx_duration(retention.raw_h))
    return dropped
