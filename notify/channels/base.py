"""What every channel implements: send one ``Notification``, say whether to retry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from notify.notification import Notification


@dataclass(frozen=True, slots=True)
class SendResult:
    """``ok``, or a failure that is ``retryable`` (receiver down, slow, 5xx, 408, 429) or final
    (4xx, 3xx); ``refused`` when the target policy refused the target at send time (final)."""

    ok: bool
    retryable: bool = False
    error: str = ""
    retry_after_s: float | None = None  # the receiver's own wish (HTTP Retry-After)
    refused: bool = False

    @classmethod
    def success(cls) -> SendResult:
        return cls(True)

    @classmethod
    def retry(cls, error: str, retry_after_s: float | None = None) -> SendResult:
        return cls(False, True, error, retry_after_s)

    @classmethod
    def give_up(cls, error: str) -> SendResult:
        return cls(False, False, error)

    @classmethod
    def refuse(cls, error: str) -> SendResult:
        return cls(False, False, error, refused=True)


class Channel(Protocol):
    """One channel. ``send`` must return within the channel's own timeout and never raise for a
    receiver's fault: the delivery worker relies on that to keep one slow or broken receiver
    from holding up others."""

    channel: str

    def send(self, n: Notification) -> SendResult: ...

    def close(self) -> None: ...
