"""Delivery options, metrics and the retry backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    workers: int = 16  # targets sent to at once
    # A claimed row is someone else's to retry only after this. Twice the webhook timeout: long enough
    # that a live sender never loses its row, short enough that a SIGKILLed one delays it only briefly.
    lease_s: float = 10.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    give_up_after_s: float = 24 * 3600.0
    poll_s: float = 1.0  # longest sleep between outbox scans when nothing kicks the worker
    burst: int = 200  # rows sent to one target before it yields its thread to others

    def __post_init__(self) -> None:
        for name in ("workers", "lease_s", "backoff_base_s", "backoff_cap_s", "give_up_after_s", "poll_s",
                     "burst"):
            if getattr(self, name) <= 0:
                raise ValueError(f"delivery option {name}={getattr(self, name)!r}: expected a positive number")


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter("safewatch_notifications_sent", "Notifications delivered, by channel",
                            ["channel"], registry=registry)
        self.failed = Counter("safewatch_notifications_failed",
                              "Notification attempts that failed, by channel and whether retried",
                              ["channel", "retry"], registry=registry)
        self.held = Counter("safewatch_notifications_held", "Notifications not sent: silenced or dropped",
                            ["reason"], registry=registry)
        self.refused = Counter("safewatch_notifications_refused",
                               "Notifications whose target the target policy refused at send time",
                               ["channel"], registry=registry)


def backoff_s(attempts: int, opts: DeliveryOptions, rng: random.Random) -> float:
    """Delay before attempt ``attempts + 1``: base·2^(attempts-1), capped, with ±20% jitter so
    that rows failing together (one receiver down) do not retry in lockstep."""
    raw = min(opts.backoff_cap_s, opts.backoff_base_s * 2 ** min(attempts - 1, 30))
    return float(raw * rng.uniform(0.8, 1.2))
