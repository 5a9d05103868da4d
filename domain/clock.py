"""The one clock: wall time in epoch milliseconds, as every part of Safewatch stores and compares it.

Parts that decide by time take a ``Clock`` (default ``now_ms``) where tests need to move time
(the delivery worker's backoff and give-up, the API's trend window); the rest call ``now_ms``.
Event time of readings is the devices' and never comes from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


def now_ms() -> int:
    """Epoch milliseconds now (integer arithmetic: no float rounding at the millisecond)."""
    return time.time_ns() // 1_000_000
