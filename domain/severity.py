"""The four-colour warning scale (blue < yellow < orange < red)."""

from __future__ import annotations

import enum


class Severity(enum.IntEnum):
    """Ordered so that comparisons read naturally: ``Severity.RED > Severity.YELLOW``."""

    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    def __str__(self) -> str:
        return self.label

    @classmethod
    def parse(cls, text: str) -> Severity:
        """``"orange"`` → ``Severity.ORANGE``; raises ValueError naming the value."""
        try:
            return cls[text.upper()]
        except (KeyError, AttributeError):
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of {names})") from None


SEVERITY_NAMES: tuple[str, ...] = tuple(s.label for s in Severity)
