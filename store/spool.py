"""The write spool: batches InfluxDB could not take yet, on disk, in order.

Each batch is one file ``{seq:016d}-{points}.lp`` holding line protocol, written to a
temporary name, fsynced and renamed, so a crash leaves either the whole batch or none of
it. Replay takes the lowest sequence number first and deletes a file only once InfluxDB
has the batch, so a crash during replay only repeats a write (InfluxDB overwrites
identical points). The spool survives restarts: a new writer resumes where the old one
stopped.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(\d{16})-(\d+)\.lp$")


@dataclass(frozen=True, slots=True)
class Segment:
    seq: int
    points: int
    path: Path


class Spool:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._lock = threading.Lock()
        self._segments: list[Segment] = []
        for p in sorted(directory.iterdir()):
            m = _NAME.match(p.name)
            if m:
                self._segments.append(Segment(int(m.group(1)), int(m.group(2)), p))
            elif p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)  # a batch cut off by a crash was never acknowledged
        self._next = self._segments[-1].seq + 1 if self._segments else 1
        self._points = sum(s.points for s in self._segments)
        if self._segments:
            log.warning("write spool %s holds %d points from an earlier run; replaying them",
                        directory, self._points)

    @property
    def depth_points(self) -> int:
        return self._points

    @property
    def depth_batches(self) -> int:
        return len(self._segments)

    def __bool__(self) -> bool:
        return bool(self._segments)

    def append(self, body: bytes, points: int) -> None:
        """Store one batch durably (fsync); raises OSError if the disk refuses."""
        with self._lock:
            seq = self._next
            self._next += 1
        final = self.directory / f"{seq:016d}-{points}.lp"
        tmp = final.with_name(final.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)
        with self._lock:
            self._segments.append(Segment(seq, points, final))
            self._points += points

    def oldest(self) -> Segment | None:
        with self._lock:
            return self._segments[0] if self._segments else None

    @staticmethod
    def read(segment: Segment) -> bytes:
        return segment.path.read_bytes()

    def remove(self, segment: Segment) -> None:
        segment.path.unlink(missing_ok=True)
        with self._lock:
            if segment in self._segments:
                self._segments.remove(segment)
                self._points -= segment.points
