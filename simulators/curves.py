"""Small numeric helpers shared by the device models: daily curves, counts, local time."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo


class Curve:
    """A piecewise-linear function through ``(x, y)`` knots, flat beyond the ends."""

    def __init__(self, knots: Sequence[tuple[float, float]]) -> None:
        if not knots:
            raise ValueError("a curve needs at least one knot")
        xs = [float(x) for x, _ in knots]
        if any(b < a for a, b in itertools.pairwise(xs)):
            raise ValueError(f"curve knots must be in order, got x = {xs}")
        self.xs = xs
        self.ys = [float(y) for _, y in knots]

    def __call__(self, x: float) -> float:
        xs, ys = self.xs, self.ys
        if x <= xs[0]:
            return ys[0]
        if x >= xs[-1]:
            return ys[-1]
        i = bisect.bisect_right(xs, x)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    @property
    def end(self) -> float:
        return self.xs[-1]


def local_hour(ts_ms: int, tz: ZoneInfo) -> float:
    """Hour of the local day as a float in [0, 24) (daylight saving included)."""
    t = datetime.fromtimestamp(ts_ms / 1000.0, tz)
    return t.hour + t.minute / 60.0 + t.second / 3600.0


def local_minute(ts_ms: int, tz: ZoneInfo) -> int:
    t = datetime.fromtimestamp(ts_ms / 1000.0, tz)
    return t.hour * 60 + t.minute


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson count; the normal approximation above 30 keeps big venues cheap."""
    if mean <= 0.0:
        return 0
    if mean > 30.0:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def relax(value: float, target: float, dt_s: float, tau_s: float) -> float:
    """First-order approach of ``value`` to ``target`` with time constant ``tau_s`` (exact step)."""
    if tau_s <= 0.0:
        return target
    return target + (value - target) * math.exp(-dt_s / tau_s)


def daily_wave(hour: float, peak_hour: float) -> float:
    """A cosine over the day: 1 at ``peak_hour``, -1 twelve hours away."""
    return math.cos(2.0 * math.pi * (hour - peak_hour) / 24.0)
