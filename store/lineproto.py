"""InfluxDB line protocol with millisecond timestamps (contract section 4).

Readings: measurement = family; tags ``device``, ``site``, ``street`` (in key order, which
InfluxDB would otherwise sort on every write); one float field per metric. Escaping follows
the 1.x rules, which 2.x and 3.x share: in measurements ``,`` and space; in tag keys, tag
values and field keys also ``=``; string field values quote ``"`` and ``\\``. Line
protocol has no escape for newlines, nor for a backslash before a character it escapes or at
the end of a name, so such names are refused with ValueError rather than silently written
as something else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from domain.readings import Reading

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_KEY = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\="})
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\"})
_FORBIDDEN = ("\n", "\r")
# 1.x keeps a backslash literally unless it precedes a character it escapes, so one before
# such a character (or at the end) cannot be told apart from an escape.
_BAD_BACKSLASH = re.compile(r'\\([ ,=\\"]|$)')


def _check(name: str, what: str) -> str:
    if not name:
        raise ValueError(f"{what} must not be empty")
    if any(c in name for c in _FORBIDDEN):
        raise ValueError(f"{what} {name!r} contains a newline, which line protocol cannot carry")
    if "\\" in name and _BAD_BACKSLASH.search(name):
        raise ValueError(f"{what} {name!r} has a backslash before {{space , = \\ \"}} or at its end, "
                         "which line protocol cannot carry")
    return name


def escape_measurement(name: str) -> str:
    if _check(name, "measurement").startswith("#"):
        raise ValueError(f"measurement {name!r} starts with '#', which line protocol reads as a comment")
    return name.translate(_MEASUREMENT)


def escape_key(name: str, what: str = "tag or field key") -> str:
    """Tag keys, tag values and field keys share one escaping rule."""
    return _check(name, what).translate(_KEY)


def format_float(value: float) -> str:
    """Shortest round-tripping text of ``value`` as a float field (no ``i`` suffix: always float)."""
    if not math.isfinite(value):
        raise ValueError(f"field value {value!r}: InfluxDB stores only finite numbers")
    return repr(float(value))


def _field(value: float | int | bool | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if any(c in value for c in _FORBIDDEN):
            raise ValueError(f"string field {value!r} contains a newline, which line protocol cannot carry")
        return '"' + value.translate(_STRING) + '"'
    return format_float(value)  # ints too: a field keeps one type forever, and readings are floats


def point_line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, float | int | bool | str],
               ts_ms: int) -> bytes:
    """One point; empty tag values are left out (InfluxDB has no empty tags). Needs a field."""
    if not fields:
        raise ValueError(f"point of {measurement!r} has no fields; InfluxDB needs at least one")
    head = escape_measurement(measurement)
    tag_part = "".join(f",{escape_key(k, 'tag key')}={escape_key(v, f'tag {k}')}"
                       for k, v in sorted(tags.items()) if v != "")
    field_part = ",".join(f"{escape_key(k, 'field key')}={_field(v)}" for k, v in fields.items())
    return f"{head}{tag_part} {field_part} {int(ts_ms)}".encode()


class ReadingEncoder:
    """Encodes readings, caching each series' escaped prefix: the hot path escapes each
    (family, site, device) once and then only formats numbers."""

    def __init__(self, max_series: int = 200_000) -> None:
        self._prefixes: dict[tuple[str, str, str, str], str] = {}
        self._fields: dict[str, str] = {}
        self._max_series = max_series

    def _prefix(self, r: Reading) -> str:
        key = (r.family, r.site, r.device, r.street)
        prefix = self._prefixes.get(key)
        if prefix is None:
            if len(self._prefixes) >= self._max_series:
                self._prefixes.clear()  # a device-id storm must not grow memory without bound
            prefix = (f"{escape_measurement(r.family)},device={escape_key(r.device, 'device id')}"
                      f",site={escape_key(r.site, 'site id')}")
            if r.street:
                prefix += f",street={escape_key(r.street, 'street id')}"
            prefix += " "
            self._prefixes[key] = prefix
        return prefix

    def _field_key(self, name: str) -> str:
        key = self._fields.get(name)
        if key is None:
            key = self._fields[name] = escape_key(name, "metric name") + "="
        return key

    def encode(self, r: Reading) -> bytes:
        """The reading as one line (no newline); raises ValueError if it cannot be written."""
        keys = self._fields
        fields = []
        for name, value in r.values.items():
            v = float(value)
            if v - v != 0.0:  # inf and nan; cheaper than math.isfinite on the hot path
                raise ValueError(f"reading of {r.site}/{r.device}: {name}={v!r} is not finite")
            fields.append(f"{keys.get(name) or self._field_key(name)}{v!r}")
        if not fields:
            raise ValueError(f"reading of {r.site}/{r.device} has no values")
        return f"{self._prefix(r)}{','.join(fields)} {r.ts_ms}".encode()


def reading_line(r: Reading) -> bytes:
    """One reading as a line; for bulk use a long-lived ``ReadingEncoder``."""
    return _DEFAULT.encode(r)


_DEFAULT = ReadingEncoder()
