"""Dead letters: what ingest or InfluxDB refused, kept for an operator to read.

One JSON object per line in ``DATA_DIR/deadletters/deadletters.jsonl``:
``{"time", "reason", "topic", "detail", "payload"}``, where ``payload`` is an excerpt (the
first ``excerpt_bytes`` bytes, undecodable bytes replaced). The file rotates at
``max_bytes`` into ``.1`` … ``.N`` so a flood of bad input cannot fill the disk.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson

from domain.clock import now_ms

log = logging.getLogger(__name__)


class DeadLetters:
    def __init__(self, directory: Path, max_bytes: int = 10 * 1024 * 1024, backups: int = 3,
                 excerpt_bytes: int = 512) -> None:
        if max_bytes <= 0 or backups < 0:
            raise ValueError(f"max_bytes={max_bytes}, backups={backups}: need max_bytes > 0 and backups >= 0")
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "deadletters.jsonl"
        self._max_bytes = max_bytes
        self._backups = backups
        self._excerpt = excerpt_bytes
        self._lock = threading.Lock()
        self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the life of the process
        self._size = self._fh.tell()
        self.written = 0

    def add(self, reason: str, topic: str, payload: bytes | str, detail: str = "",
            at_ms: int | None = None) -> None:
        """Record one refusal; never raises (a full disk must not stop ingest)."""
        raw = payload.encode() if isinstance(payload, str) else payload
        excerpt = raw[: self._excerpt].decode("utf-8", "replace")
        if len(raw) > self._excerpt:
            excerpt += f"… ({len(raw)} bytes)"
        when = datetime.fromtimestamp((at_ms if at_ms is not None else now_ms()) / 1000, UTC)
        line = orjson.dumps({"time": when.isoformat(timespec="milliseconds"), "reason": reason,
                             "topic": topic, "detail": detail, "payload": excerpt}) + b"\n"
        with self._lock:
            try:
                if self._size + len(line) > self._max_bytes and self._size > 0:
                    self._rotate()
                self._fh.write(line)
                self._fh.flush()
                self._size += len(line)
                self.written += 1
            except (OSError, ValueError) as exc:  # ValueError: written after close()
                log.error("cannot write dead letter to %s: %s", self.path, exc)

    def _rotate(self) -> None:
        self._fh.close()
        if self._backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for n in range(self._backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._fh = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        with self._lock:
            self._fh.close()
