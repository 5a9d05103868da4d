"""InfluxDB over its v1-compatible HTTP API (1.x, 2.x compatibility endpoints, 3.x).

``InfluxClient`` speaks ``/ping``, ``/write`` (millisecond precision) and ``/query``.
``InfluxWriter`` batches points, writes one request at a time, spools to disk what
InfluxDB cannot take and tells each caller when its points are durable (contract §4).
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from store.deadletters import DeadLetters
from store.spool import Spool

log = logging.getLogger(__name__)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class InfluxError(Exception):
    """Base of every InfluxDB failure; the message names the server and what went wrong."""


class InfluxUnavailable(InfluxError):
    """Not reachable, overloaded (5xx), or refusing our credentials: retry later, keep the data."""


class InfluxRejected(InfluxError):
    """The server refused the data itself (4xx): retrying the same body cannot succeed."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class InfluxQueryError(InfluxError):
    """An InfluxQL statement failed (bad query, unknown database, ...)."""


class InfluxClient:
    """One HTTP connection pool with keep-alive. ``credentials`` is (user, password); a 2.x/3.x
    token travels as the password, which all three server generations accept."""

    def __init__(self, url: str, database: str, credentials: tuple[str, str] | None = None, *,
                 timeout: float = 10.0, compress: bool | None = None) -> None:
        self.url = url.rstrip("/")
        self.database = database
        host = urlsplit(self.url).hostname or ""
        # gzip costs CPU on both ends; it pays only when the bytes cross a real network.
        self.compress = host not in _LOOPBACK if compress is None else compress
        self._http = httpx.Client(base_url=self.url, auth=credentials, timeout=timeout,
                                  limits=httpx.Limits(max_keepalive_connections=4, max_connections=8))
        self.version: str | None = None

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"InfluxDB {self.url} unreachable: {exc or type(exc).__name__}") from exc
        if r.status_code >= 500:
            raise InfluxUnavailable(f"InfluxDB {self.url} answered {r.status_code}: {_error_text(r)}")
        if r.status_code in (401, 403):
            raise InfluxUnavailable(f"InfluxDB {self.url} refused our credentials ({r.status_code}): "
                                    f"{_error_text(r)}; check SAFEWATCH_INFLUX_TOKEN")
        return r

    def ping(self) -> str:
        """The server's version; raises InfluxUnavailable when it does not answer."""
        r = self._request("GET", "/ping")
        if r.status_code != 204:
            raise InfluxUnavailable(f"InfluxDB {self.url}/ping answered {r.status_code}, expected 204")
        self.version = r.headers.get("X-Influxdb-Version", "unknown")
        return self.version

    def ensure_database(self) -> None:
        """Create the database on 1.x; on 2.x/3.x check that the bucket is mapped and say so if not."""
        version = self.ping()
        if version.startswith("1."):
            self.query(f'CREATE DATABASE "{_quote_ident(self.database)}"', database=None)
            return
        names = {row[0] for s in self.query("SHOW DATABASES", database=None) for row in s.get("values", [])}
        if self.database not in names:
            raise InfluxError(
                f"InfluxDB {version} at {self.url} has no database {self.database!r}: create the bucket "
                f"(and a DBRP mapping on 2.x) or set SAFEWATCH_INFLUX_DB to an existing one")

    def write(self, body: bytes) -> None:
        """POST line protocol; raises InfluxUnavailable (retry) or InfluxRejected (4xx)."""
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.compress and len(body) > 4096:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        params = {"db": self.database, "precision": "ms"}
        r = self._request("POST", "/write", params=params, content=body, headers=headers)
        if r.status_code == 404:
            # Created while InfluxDB was down at start, or dropped since: make it where we may.
            try:
                self.ensure_database()
            except InfluxError as exc:
                raise InfluxUnavailable(str(exc)) from exc
            r = self._request("POST", "/write", params=params, content=body, headers=headers)
        if r.status_code == 404:
            raise InfluxUnavailable(f"InfluxDB {self.url}: database {self.database!r} not found "
                                    f"({_error_text(r)})")
        if r.status_code >= 400:
            raise InfluxRejected(f"InfluxDB {self.url} rejected the write ({r.status_code}): "
                                 f"{_error_text(r)}", r.status_code)

    def query(self, influxql: str, params: Mapping[str, Any] | None = None, *,
              database: str | bool | None = True, epoch: str | None = "ms") -> list[dict[str, Any]]:
        """Series of every statement (``name``, ``tags``, ``columns``, ``values``); bound
        ``$params`` are passed to the server, never pasted into the text."""
        data: dict[str, str] = {"q": influxql}
        if database is True:
            data["db"] = self.database
        elif isinstance(database, str):
            data["db"] = database
        if epoch:
            data["epoch"] = epoch
        if params:
            data["params"] = orjson.dumps(dict(params)).decode()
        r = self._request("POST", "/query", data=data)
        try:
            doc = r.json()
        except ValueError:
            raise InfluxQueryError(f"InfluxDB {self.url} answered {r.status_code} with no JSON") from None
        if "error" in doc:
            raise InfluxQueryError(f"InfluxQL {influxql!r}: {doc['error']}")
        series: list[dict[str, Any]] = []
        for result in doc.get("results", []):
            if "error" in result:
                raise InfluxQueryError(f"InfluxQL {influxql!r}: {result['error']}")
            series.extend(result.get("series", []))
        return series


def _quote_ident(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _error_text(r: httpx.Response) -> str:
    try:
        doc = r.json()
        if isinstance(doc, dict) and "error" in doc:
            return str(doc["error"])[:500]
    except ValueError:
        pass
    return r.text[:500] or r.reason_phrase


OnDurable = Callable[[], None]


class _Metrics:
    def __init__(self, registry: CollectorRegistry | None, writer: InfluxWriter) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.written = Counter("safewatch_points_written", "Points InfluxDB accepted", registry=reg)
        self.rejected = Counter("safewatch_points_rejected",
                                "Points InfluxDB refused (4xx), kept as dead letters", registry=reg)
        self.spooled = Counter("safewatch_points_spooled", "Points written to the disk spool", registry=reg)
        self.failures = Counter("safewatch_write_failures", "Failed write requests", ["kind"], registry=reg)
        self.latency = Histogram("safewatch_write_latency_seconds", "Duration of one /write request",
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10), registry=reg)
        self.batch = Histogram("safewatch_write_batch_points", "Points per /write request",
                               buckets=(10, 100, 500, 1000, 2500, 5000, 10000), registry=reg)
        Gauge("safewatch_spool_depth_points", "Points waiting in the disk spool",
              registry=reg).set_function(lambda: writer.spool_depth)
        Gauge("safewatch_write_pending_points", "Points waiting in memory for the next flush",
              registry=reg).set_function(lambda: writer.pending_points)


REPLAY_SLICE_S = 0.5


class InfluxWriter:
    """Batches lines and writes them from one thread, one request at a time.

    A batch goes out when it holds ``batch_points`` or its oldest line is ``flush_interval``
    seconds old. When InfluxDB is unreachable or answers 5xx (after brief retries), the batch
    goes to the spool; while the spool holds anything, new batches join it (keeping order) and
    the spool is replayed with backoff. A 4xx batch is bisected until the offending points
    are isolated; those become dead letters, the rest is written. ``on_durable`` callbacks
    run on the writer thread once their lines are in InfluxDB or in the spool.
    """

    def __init__(self, client: InfluxClient, spool_dir: Path, batch_points: int = 5000,
                 flush_interval: float = 0.2, registry: CollectorRegistry | None = None, *,
                 dead_letters: DeadLetters | None = None, max_pending_points: int = 50_000,
                 retry_delays: Sequence[float] = (0.05, 0.25), replay_backoff: tuple[float, float] = (0.5, 15.0),
                 ) -> None:
        if batch_points < 1 or flush_interval <= 0 or max_pending_points < batch_points:
            raise ValueError(f"batch_points={batch_points}, flush_interval={flush_interval}, max_pending_points="
                             f"{max_pending_points}: need batch_points >= 1, flush_interval > 0 and "
                             f"max_pending_points >= batch_points")
        self.client = client
        self.spool = Spool(spool_dir)
        self.batch_points = batch_points
        self.flush_interval = flush_interval
        self.max_pending_points = max_pending_points
        self._dead = dead_letters
        self._retry_delays = tuple(retry_delays)
        self._backoff_min, self._backoff_max = replay_backoff
        self._backoff = self._backoff_min
        self._next_replay = 0.0
        self._cond = threading.Condition()
        self._pending: deque[tuple[Sequence[bytes], OnDurable | None]] = deque()
        self._pending_points = 0
        self._oldest = 0.0
        self._put_seq = 0  # puts accepted so far
        self._done_seq = 0  # puts whose lines are durable
        self._flush_now = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self._m = _Metrics(registry, self)

    @property
    def spool_depth(self) -> int:
        return self.spool.depth_points

    @property
    def pending_points(self) -> int:
        return self._pending_points

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._thread.start()

    def put(self, lines: Sequence[bytes], on_durable: OnDurable | None = None) -> None:
        """Queue lines (no newlines); blocks while ``max_pending_points`` wait in memory, which
        holds back the caller instead of growing without bound."""
        if not lines:
            if on_durable is not None:
                self._call(on_durable)
            return
        with self._cond:
            while self._pending_points >= self.max_pending_points and not self._stopping:
                self._cond.wait(0.5)
            if self._stopping and self._thread is None:
                raise RuntimeError("InfluxWriter.put after stop()")
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append((lines, on_durable))
            self._pending_points += len(lines)
            self._put_seq += 1
            if self._pending_points >= self.batch_points:
                self._cond.notify_all()

    def request_flush(self) -> None:
        """Write what is pending without waiting for size or age; returns at once."""
        with self._cond:
            if self._pending and not self._flush_now:
                self._flush_now = True
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Write (or spool) everything put so far; False if that took longer than ``timeout``."""
        with self._cond:
            target = self._put_seq
            self._flush_now = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done_seq >= target, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Drain: write or spool everything pending, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("InfluxDB writer still busy after %.0fs; %d points not yet durable",
                          timeout, self._pending_points)
            self._thread = None

    # -- the writer thread -----------------------------------------------------------------

    def _due(self) -> bool:
        if not self._pending:
            return False
        return (self._flush_now or self._stopping or self._pending_points >= self.batch_points
                or time.monotonic() - self._oldest >= self.flush_interval)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    if self._stopping:
                        return
                    wait = self.flush_interval if not self._pending else \
                        self._oldest + self.flush_interval - time.monotonic()
                    if self.spool and not self._stopping:
                        wait = min(wait, max(0.0, self._next_replay - time.monotonic()))
                        if wait <= 0:
                            break
                    self._cond.wait(max(wait, 0.001))
                batch, callbacks, n_puts = self._take()
            if batch:
                try:
                    self._write_batch(batch)
                except Exception:  # a bug must not lose the batch or kill the thread
                    log.exception("InfluxDB writer failed on a batch of %d points; spooling it", len(batch))
                    self._to_spool(b"\n".join(batch), len(batch))
                for cb in callbacks:
                    self._call(cb)
                with self._cond:
                    self._done_seq += n_puts
                    if not self._pending:
                        self._flush_now = False
                    self._cond.notify_all()
            # Replay also between batches: under steady load there is never a moment without one,
            # and the spool must still drain while the load goes on.
            if self.spool and not self._stopping and time.monotonic() >= self._next_replay:
                try:
                    self._replay_some()
                except Exception:  # e.g. an unreadable spool file: wait, keep the file, try again
                    log.exception("replaying the spool %s failed", self.spool.directory)
                    self._next_replay = time.monotonic() + self._backoff_max

    def _take(self) -> tuple[list[bytes], list[OnDurable], int]:
        batch: list[bytes] = []
        callbacks: list[OnDurable] = []
        n = 0
        while self._pending and (not batch or len(batch) + len(self._pending[0][0]) <= self.batch_points):
            lines, cb = self._pending.popleft()
            batch.extend(lines)
            if cb is not None:
                callbacks.append(cb)
            n += 1
        self._pending_points -= len(batch)
        if self._pending:
            self._oldest = time.monotonic()  # what is left starts its own age; size may flush it first
        return batch, callbacks, n

    def _write_batch(self, lines: list[bytes]) -> None:
        body = b"\n".join(lines)
        if self.spool:  # older data waits on disk: keep the order, join the queue
            self._to_spool(body, len(lines))
            return
        for delay in (*self._retry_delays, None):
            try:
                self._post(lines, body)
                return
            except InfluxUnavailable as exc:
                self._unavailable(exc)
                if delay is None or self._stopping:
                    break
                time.sleep(delay)
        self._to_spool(body, len(lines))

    def _post(self, lines: Sequence[bytes], body: bytes) -> None:
        """Write, bisecting on 4xx; raises InfluxUnavailable (the caller keeps the whole body)."""
        t0 = time.perf_counter()
        try:
            self.client.write(body)
        except InfluxRejected as exc:
            self._m.failures.labels("rejected").inc()
            if len(lines) == 1:
                self._m.rejected.inc()
                log.warning("InfluxDB rejected a point: %s", exc)
                if self._dead is not None:
                    self._dead.add("influxdb_rejected", "", lines[0], str(exc))
                return
            mid = len(lines) // 2
            for half in (lines[:mid], lines[mid:]):
                self._post(half, b"\n".join(half))
            return
        self._m.latency.observe(time.perf_counter() - t0)
        self._m.batch.observe(len(lines))
        self._m.written.inc(len(lines))
        if self.last_error is not None:
            log.info("InfluxDB %s writable again", self.client.url)
            self.last_error = None

    def _unavailable(self, exc: InfluxError) -> None:
        self._m.failures.labels("unavailable").inc()
        if self.last_error is None:
            log.error("%s; spooling to %s", exc, self.spool.directory)
        self.last_error = str(exc)

    def _to_spool(self, body: bytes, points: int) -> None:
        while True:
            try:
                self.spool.append(body, points)
                self._m.spooled.inc(points)
                return
            except OSError as exc:  # nowhere to keep the data: hold everything back and retry
                log.error("cannot write to the spool %s: %s; retrying", self.spool.directory, exc)
                time.sleep(1.0)

    def _replay_some(self) -> None:
        """Replays segments, oldest first, for up to REPLAY_SLICE_S, so new batches (and the acks
        waiting on them) are not held back for long; a failure sets the backoff and stops."""
        deadline = time.monotonic() + REPLAY_SLICE_S
        while self.spool and time.monotonic() < deadline and time.monotonic() >= self._next_replay:
            self._replay_one()

    def _replay_one(self) -> None:
        seg = self.spool.oldest()
        if seg is None:
            return
        body = self.spool.read(seg)
        lines = body.split(b"\n")
        try:
            self._post(lines, body)
        except InfluxUnavailable as exc:
            self._unavailable(exc)
            self._next_replay = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self._backoff_max)
            return
        self.spool.remove(seg)
        self._backoff = self._backoff_min
        if not self.spool:
            log.info("write spool replayed; InfluxDB is up to date")

    @staticmethod
    def _call(cb: OnDurable) -> None:
        try:
            cb()
        except Exception:  # one caller's bug must not stop the writer
            log.exception("on_durable callback failed")
