"""Local time of day for ``schedule.between``, computed from event time in the district's zone."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

# Zone offsets change (DST, history) only on quarter-hour UTC boundaries in every current
# tz database zone, so one offset lookup per 15-minute UTC bucket is exact and keeps the
# per-reading cost to integer arithmetic.
_BUCKET_MS = 15 * 60 * 1000


class LocalClock:
    def __init__(self, tz: tzinfo) -> None:
        self._tz = tz
        self._bucket = -1
        self._offset_ms = 0

    def minute_of_day(self, ts_ms: int) -> int:
        """Minutes since local midnight (0..1439) at the epoch-millisecond instant ``ts_ms``."""
        bucket = ts_ms // _BUCKET_MS
        if bucket != self._bucket:
            at = datetime.fromtimestamp(bucket * _BUCKET_MS / 1000, UTC)
            offset = self._tz.utcoffset(at.astimezone(self._tz))
            self._offset_ms = int(offset.total_seconds() * 1000) if offset is not None else 0
            self._bucket = bucket
        return int((ts_ms + self._offset_ms) // 60_000 % 1440)
