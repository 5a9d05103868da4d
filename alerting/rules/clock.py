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
        return int((ts_ms + self.offset_ms(ts_ms)) // 60_000 % 1440)

    def offset_ms(self, ts_ms: int) -> int:
        """The zone's UTC offset at ``ts_ms``, in ms; the same for the whole of its ``bucket_end``."""
        bucket = ts_ms // _BUCKET_MS
        if bucket != self._bucket:
            at = datetime.fromtimestamp(bucket * _BUCKET_MS / 1000, UTC)
            offset = self._tz.utcoffset(at.astimezone(self._tz))
            self._offset_ms = int(offset.total_seconds() * 1000) if offset is not None else 0
            self._bucket = bucket
        return self._offset_ms

    @staticmethod
    def bucket_end(ts_ms: int) -> int:
        """The end of the 15-minute UTC bucket holding ``ts_ms``: the offset cannot change before it."""
        return (ts_ms // _BUCKET_MS + 1) * _BUCKET_MS
