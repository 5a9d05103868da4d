"""Webhook channel (contract section 6): signed JSON POSTs with a per-receiver timeout.

Before every POST the URL goes through the target policy again, on the addresses its host
resolves to now, and the request is sent to the address that was checked (the Host header and
TLS SNI keep the name), so a name that later resolves to a forbidden place is still refused.
Status handling follows what receivers and proxies mean: 2xx delivered; 408, 429 and 5xx,
timeouts and connection errors are retried (honouring ``Retry-After`` seconds); other 4xx and
3xx (redirects are never followed) mean the request itself is wrong, so the row is given up.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

import httpx

from notify.channels.base import SendResult
from notify.notification import Notification
from notify.policy import TargetPolicy, TargetRefused

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


class WebhookChannel:
    """Sends notifications of webhook subscriptions; thread-safe (one pooled httpx client)."""

    channel = "webhook"

    def __init__(self, policy: TargetPolicy, timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        if timeout <= 0:
            raise ValueError(f"webhook timeout={timeout!r}: expected seconds > 0")
        self.timeout = timeout
        self._policy = policy
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"User-Agent": "safewatch-webhook/1"},
            follow_redirects=False,  # a 3xx is the receiver's answer, not a new target to trust
        )

    def send(self, n: Notification) -> SendResult:
        sub = n.subscription
        if sub is None:
            return SendResult.give_up("webhook notification without a subscription")
        url = sub.url
        try:
            checked = self._policy.check_url(url)
        except TargetRefused as err:
            return SendResult.refuse(f"POST refused: {err}")
        except OSError as err:  # the name does not resolve now: the receiver may come back
            return SendResult.retry(f"POST {url}: cannot resolve the host: {err}")
        headers = {
            "Content-Type": "application/json",
            "X-Safewatch-Event-Id": n.event_key,
            # Always present, as the contract lists it; without a secret the key is empty.
            "X-Safewatch-Signature": signature(sub.secret, n.payload),
            "Host": urlsplit(url).netloc.rpartition("@")[2],
        }
        extensions = {"sni_hostname": checked.host} if url.startswith("https:") else {}
        try:
            resp = self._client.post(checked.url, content=n.payload, headers=headers, extensions=extensions)
        except httpx.TimeoutException:
            return SendResult.retry(f"POST {url}: no answer within {self.timeout:g}s")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            return SendResult.give_up(f"POST {url}: {err}")
        except httpx.HTTPError as err:
            return SendResult.retry(f"POST {url}: {type(err).__name__}: {err}")
        code = resp.status_code
        if 200 <= code < 300:
            return SendResult.success()
        text = f"POST {url}: HTTP {code} {resp.text[:200]!r}"
        if 300 <= code < 400:
            return SendResult.give_up(f"{text} (redirects are not followed)")
        if code >= 500 or code in RETRYABLE_4XX:
            return SendResult.retry(text, _retry_after(resp))
        return SendResult.give_up(text)

    def close(self) -> None:
        self._client.close()
