"""A durable local journal of engine signals the alert book could not take yet (contract section 7).

While the state database is away, the book writer appends each batch of signals here and
fsyncs before the messages that caused them are acknowledged; when the database returns the
entries are replayed, in order, and marked applied. Files in the journal's directory:

- ``journal.log``: append-only, one entry per line, ``CRC32HEX JSON\\n``. A torn last line (a
  crash during the write, so never fsynced and never acknowledged) is cut off at open.
- ``applied``: ``SEQ OFFSET`` of the last applied entry, replaced atomically (write, fsync,
  rename, fsync the directory). Entries with ``seq <= SEQ`` are never replayed again; the
  offset only saves rereading them. Once everything is applied the log is truncated.

Applied once: the marker is written after each entry's book transaction commits, so a crash
can leave exactly one entry, the first unapplied one, whose transaction may have committed.
``uncertain_seq`` names it; the book writer replays it guarded (a signal older than the
alert's last change is skipped), which is what a second application would otherwise undo.

Each entry carries the partition its signals came from and the lease under which they were
produced (``LeaseMark``: partition, epoch, partition count). With several processes (contract
section 12) the replay applies an entry only if, in the book write's own transaction, that lease
row still has the entry's epoch: a claim by anyone (this process's next run included) raises the
epoch, and the successor restored that partition from the book and InfluxDB, so applying the
entry then would write over a newer state. Single-process serve (SQLite) uses the partition
``"*"`` and no lease.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.alerts import AlertKey, Signal
from domain.severity import Severity

log = logging.getLogger(__name__)
ALL_PARTITIONS = "*"
LOG, MARKER, LOCK = "journal.log", "applied", "lock"


@dataclass(frozen=True, slots=True)
class LeaseMark:
    """The lease a partition's signals were produced under: ``partition`` of ``partitions``, at ``epoch``."""

    partition: int
    epoch: int
    partitions: int


Batch = tuple[str, Sequence[Signal]] | tuple[str, Sequence[Signal], LeaseMark | None]


class JournalError(Exception):
    """The journal's files cannot be read or written (names the file and the reason)."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    partition: str
    signals: tuple[Signal, ...]
    end: int  # byte offset just after this entry in journal.log
    lease: LeaseMark | None = None  # None: no lease to check (single process, or an older entry)


def signal_to_json(s: Signal) -> dict[str, Any]:
    k = s.key
    return {"rule": k.rule, "site": k.site, "device": k.device, "metric": k.metric, "family": s.family,
            "kind": s.kind, "firing": s.firing, "at_ms": s.at_ms,
            "severity": int(s.severity) if s.severity is not None else None,
            "value": s.value, "threshold": s.threshold, "message": s.message}


def signal_from_json(d: dict[str, Any]) -> Signal:
    key = AlertKey(d["rule"], d["site"], d["device"], d["metric"])
    common: dict[str, Any] = {"family": d["family"], "kind": d["kind"], "at_ms": int(d["at_ms"]),
                              "value": d["value"], "message": d["message"]}
    if d["firing"]:
        return Signal.fire(key, severity=Severity(d["severity"]), threshold=d["threshold"], **common)
    return Signal.clear(key, **common)


def _encode(seq: int, partition: str, signals: Sequence[Signal], lease: LeaseMark | None) -> bytes:
    entry: dict[str, Any] = {"seq": seq, "partition": partition}
    if lease is not None:
        entry |= {"epoch": lease.epoch, "partitions": lease.partitions}
    entry["signals"] = [signal_to_json(s) for s in signals]
    body = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode(line: bytes) -> dict[str, Any] | None:
    """The entry of one complete line, or None when it is torn or damaged."""
    crc, sep, body = line.rstrip(b"\n").partition(b" ")
    if not sep or not line.endswith(b"\n"):
        return None
    try:
        if int(crc, 16) != zlib.crc32(body):
            return None
        entry: dict[str, Any] = json.loads(body)
    except ValueError:
        return None
    return entry


def lease_runs(signals: Sequence[Signal], leases: Sequence[LeaseMark | None]) -> list[Batch]:
    """Entries for signals with their partitions' leases (parallel): one per run under the same
    lease, in order. A signal of a partition not held is left out: the fence would refuse it too."""
    out: list[Batch] = []
    run: list[Signal] = []
    mark: LeaseMark | None = None
    for sig, lease in zip(signals, leases, strict=True):
        if lease is None:
            log.warning("journal: signal for %s left out: its partition is not held", sig.key)
            continue
        if mark is not None and lease != mark:
            out.append((str(mark.partition), run, mark))
            run = []
        run.append(sig)
        mark = lease
    if mark is not None and run:
        out.append((str(mark.partition), run, mark))
    return out


def _lease(entry: dict[str, Any]) -> LeaseMark | None:
    if entry.get("epoch") is None or not str(entry["partition"]).isdigit():
        return None
    return LeaseMark(int(entry["partition"]), int(entry["epoch"]), int(entry["partitions"]))


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(directory: Path) -> None:
    """``mkdir -p``, each new folder's name made durable in its parent (see ``_fsync_dir``)."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    for d in reversed(missing):
        _fsync_dir(d.parent)


class Journal:
    """The journal in ``directory`` (created). Thread-safe; one process per directory (locked)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        try:
            _make_dirs(directory)
            self._lockfh = open(directory / LOCK, "w")  # noqa: SIM115 - held for the journal's life
            try:  # two writers would interleave entries and each replay the other's
                fcntl.flock(self._lockfh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lockfh.close()
                raise JournalError(f"journal {directory} is in use by another process: give each serve "
                                   "process its own SAFEWATCH_DATA_DIR") from None
            self._applied_seq, self._applied_off = self._read_marker()
            self._last_seq, self._pending = self._scan()
            created = not (directory / LOG).exists()
            self._fh = open(directory / LOG, "ab")  # noqa: SIM115 - kept open for appends
            if created:
                # An append's fsync makes the file's content durable, not its name in the folder:
                # without this a power cut could take journal.log, acknowledged entries and all.
                _fsync_dir(directory)
        except OSError as err:
            raise JournalError(f"journal {directory}: {err.strerror or err}") from err
        self._lock = threading.Lock()
        # The first unapplied entry may have been committed by a process killed before its marker.
        self.uncertain_seq: int | None = self._applied_seq + 1 if self._pending else None

    def _read_marker(self) -> tuple[int, int]:
        path = self.dir / MARKER
        if not path.exists():
            return 0, 0
        try:
            seq, off = path.read_text().split()
            return int(seq), int(off)
        except ValueError as err:
            raise JournalError(f"journal marker {path} is damaged ({path.read_text()!r}); "
                               "fix or remove it knowingly: entries it covers would be replayed") from err

    def _scan(self) -> tuple[int, int]:
        """(last seq in the log, unapplied entries); cuts a torn tail off the log."""
        path = self.dir / LOG
        last, pending, good = self._applied_seq, 0, 0
        if path.exists():
            with open(path, "rb") as fh:
                for line in fh:
                    entry = _decode(line)
                    if entry is None:
                        break
                    good += len(line)
                    last = max(last, int(entry["seq"]))
                    pending += int(entry["seq"]) > self._applied_seq
            if good < path.stat().st_size:
                with open(path, "r+b") as fh:
                    fh.truncate(good)
                    os.fsync(fh.fileno())
        if self._applied_off > good:  # the log was truncated after the marker was written
            self._applied_off = 0
        return last, pending

    def __len__(self) -> int:
        """Entries not yet applied to the book."""
        return self._pending

    def append(self, batches: Sequence[Batch]) -> None:
        """Appends (partition, signals[, lease]) entries in one write and fsyncs; durable on return."""
        with self._lock:
            data = bytearray()
            for batch in batches:
                lease = batch[2] if len(batch) == 3 else None
                if lease is not None and batch[0] != str(lease.partition):
                    raise ValueError(f"journal entry for partition {batch[0]!r} carries the lease of "
                                     f"partition {lease.partition}")
                self._last_seq += 1
                data += _encode(self._last_seq, batch[0], batch[1], lease)
            try:
                self._fh.write(data)
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError as err:
                raise JournalError(f"journal {self.dir / LOG}: append failed: {err.strerror or err}") from err
            self._pending += len(batches)

    def entries(self) -> Iterator[JournalEntry]:
        """The unapplied entries in order (read from disk; entries appended meanwhile included)."""
        with open(self.dir / LOG, "rb") as fh:
            fh.seek(self._applied_off)
            off = self._applied_off
            for line in fh:
                entry = _decode(line)
                if entry is None:
                    return
                off += len(line)
                if int(entry["seq"]) > self._applied_seq:
                    yield JournalEntry(int(entry["seq"]), str(entry["partition"]),
                                       tuple(signal_from_json(s) for s in entry["signals"]), off, _lease(entry))

    def mark_applied(self, entry: JournalEntry) -> None:
        """Records that ``entry`` is in the book; truncates the log once nothing is left to replay."""
        with self._lock:
            self._applied_seq, self._applied_off = entry.seq, entry.end
            self._pending = max(0, self._pending - 1)
            if entry.seq == self.uncertain_seq:
                self.uncertain_seq = None
            empty = entry.seq == self._last_seq
            self._write_marker(entry.seq, 0 if empty else entry.end)
            if empty:
                self._fh.truncate(0)
                os.fsync(self._fh.fileno())
                self._applied_off = 0

    def _write_marker(self, seq: int, off: int) -> None:
        tmp = self.dir / (MARKER + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(f"{seq} {off}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.dir / MARKER)
        _fsync_dir(self.dir)

    def close(self) -> None:
        with self._lock:
            self._fh.close()
            self._lockfh.close()  # releases the flock
