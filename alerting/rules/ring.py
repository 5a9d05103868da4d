"""A fixed-size ring of (timestamp, value) pairs: the trend window of one series.

Plain ``array('d')`` storage: per-element access from Python is several times cheaper than
on numpy arrays, and the window is only walked in full when the running sums are rebased.
Timestamps are epoch milliseconds, exact in a double until the year 287396.
"""

from __future__ import annotations

from array import array


class Ring:
    __slots__ = ("_start", "_ts", "_vals", "capacity", "newest", "oldest", "size")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"ring capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._ts = array("d", bytes(8 * capacity))
        self._vals = array("d", bytes(8 * capacity))
        self._start = 0
        self.size = 0
        # The end timestamps as plain attributes: the trend path reads them on every reading.
        # Meaningless while the ring is empty.
        self.oldest = 0.0
        self.newest = 0.0

    def push(self, ts_ms: float, value: float) -> tuple[float, float] | None:
        """Append the newest point; when full, the oldest is overwritten and returned."""
        evicted = self.pop() if self.size == self.capacity else None
        i = (self._start + self.size) % self.capacity
        self._ts[i] = ts_ms
        self._vals[i] = value
        self.size += 1
        self.newest = ts_ms
        self.oldest = self._ts[self._start]
        return evicted

    def pop(self) -> tuple[float, float]:
        """Remove and return the oldest point."""
        if not self.size:
            raise IndexError("pop from an empty ring")
        i = self._start
        self._start = (i + 1) % self.capacity
        self.size -= 1
        self.oldest = self._ts[self._start]
        return self._ts[i], self._vals[i]

    def clear(self) -> None:
        self._start = 0
        self.size = 0

    def points(self) -> list[tuple[float, float]]:
        """The points, oldest first."""
        cap, start = self.capacity, self._start
        return [(self._ts[(start + k) % cap], self._vals[(start + k) % cap]) for k in range(self.size)]
