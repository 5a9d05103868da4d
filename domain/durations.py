"""Durations as the config writes them: ``500ms``, ``10s``, ``5m``, ``2h``, ``1d`` (or ``1h30m``)."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError naming the value when it is malformed."""
    if not isinstance(text, str) or not _WHOLE.match(text.strip()):
        raise ValueError(f"malformed duration {text!r} (expected e.g. 500ms, 10s, 5m, 2h, 1d)")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text.strip()))


def format_duration(seconds: float) -> str:
    """The shortest config spelling of ``seconds`` (``300`` → ``5m``)."""
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
