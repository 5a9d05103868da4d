"""Webhook channel (contract section 6): signed JSON POSTs with a per-receiver timeout.

Status handling follows what receivers and proxies mean: 2xx delivered; 408, 429 and 5xx,
timeouts and connection errors are retried (honouring ``Retry-After`` seconds); other 4xx
and 3xx mean the request itself is wrong, so retrying cannot help and the row is given up
with the answer recorded.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx

from alerting.notify.base import SendResult
from store.state.records import OutboxItem, Subscription

RETRYABLE_4XX = frozenset({408, 425, 429})
MAX_RETRY_AFTER_S = 3600.0


def signature(secret: str, body: bytes) -> str:
    """The ``X-Safewatch-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("retry-after", "")
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER_S) if raw else None
    except ValueError:
        return None  # an HTTP date: the worker's own backoff is good enough


class WebhookNotifier:
    """Sends outbox rows of webhook subscriptions; thread-safe (one pooled httpx client)."""

    channel = "webhook"

    def __init__(self, timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        if timeout <= 0:
            raise ValueError(f"webhook timeout={timeout!r}: expected seconds > 0")
        self.timeout = timeout
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"User-Agent": "safewatch-webhook/1"},
        )

    def send(self, item: OutboxItem, subscription: Subscription | None) -> SendResult:
        if subscription is None:
            return SendResult.give_up("webhook row without a subscription")
        headers = {
            "Content-Type": "application/json",
            "X-Safewatch-Event-Id": str(item.event_id),
            # Always present, as the contract lists it; without a secret the key is empty.
            "X-Safewatch-Signature": signature(subscription.secret, item.payload),
        }
        try:
            resp = self._client.post(subscription.url, content=item.payload, headers=headers)
        except httpx.TimeoutException:
            return SendResult.retry(f"POST {subscription.url}: no answer within {self.timeout:g}s")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            return SendResult.give_up(f"POST {subscription.url}: {err}")
        except httpx.HTTPError as err:
            return SendResult.retry(f"POST {subscription.url}: {type(err).__name__}: {err}")
        code = resp.status_code
        if 200 <= code < 300:
            return SendResult.success()
        text = f"POST {subscription.url}: HTTP {code} {resp.text[:200]!r}"
        if code >= 500 or code in RETRYABLE_4XX:
            return SendResult(False, True, text, _retry_after(resp))
        return SendResult.give_up(text)

    def close(self) -> None:
        self._client.close()
