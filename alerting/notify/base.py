"""What every notification channel implements: send one outbox row, say whether to retry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from store.state.records import OutboxItem, Subscription


@dataclass(frozen=True, slots=True)
class SendResult:
    """``ok``, or a failure that is ``retryable`` (receiver down, slow, 5xx, 408, 429) or final (4xx)."""

    ok: bool
    retryable: bool = False
    error: str = ""
    retry_after_s: float | None = None  # the receiver's own wish (HTTP Retry-After)

    @classmethod
    def success(cls) -> SendResult:
        return cls(True)

    @classmethod
    def retry(cls, error: str) -> SendResult:
        return cls(False, True, error)

    @classmethod
    def give_up(cls, error: str) -> SendResult:
        return cls(False, False, error)


class Notifier(Protocol):
    """One channel (webhook, mqtt). ``send`` must return within the channel's own timeout and
    never raise for a receiver's fault: the delivery worker relies on that to keep one slow or
    broken receiver from holding up others."""

    channel: str

    def send(self, item: OutboxItem, subscription: Subscription | None) -> SendResult: ...

    def close(self) -> None: ...
