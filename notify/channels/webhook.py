"""Webhook channel (contract section 6): signed JSON POSTs with a per-receiver timeout.

Before every POST the URL goes through the target policy again, on the addresses its host
resolves to now, and the request is sent to the address that was checked (the Host header and
TLS SNI keep the name), so a name that later resolves to a forbidden place is still refused.
Status handling follows what receivers and proxies mean: 2xx delivered; 408, 429 and 5xx,
timeouts and connection errors are retried (honouring ``Retry-After`` seconds); other 4xx and
3xx (redirects are never followed) mean the request itself is wrong, so the row is given up.

Connections are pooled by (scheme, address, port), which is where the request goes, not by the
name the TLS certificate was checked for: two HTTPS receivers whose names resolve to one
address (a shared load balancer, a CDN, a name the caller points anywhere) would share a
connection verified for the first name. So HTTPS gets one client (one pool) per host name,
at most ``HTTPS_HOSTS`` of them, least recently used closed first; plain HTTP checks no
identity and shares one pool.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from notify.channels.base import SendResult
from notify.notification import Notification
from notify.policy import TargetPolicy, TargetRefused

RETRYABLE_4XX = frozenset({408, 425, 429})
MAX_RETRY_AFTER_S = 3600.0
HTTPS_HOSTS = 64  # host names with a pool of their own at once (each keeps a few idle connections)


def signature(secret: str, body: bytes) -> str:
    """The ``X-Safewatch-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("retry-after", "")
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER_S) if raw else None
    except ValueError:
        return None  # an HTTP date: the worker's own backoff is good enough


@dataclass
class _HostClient:
    """An HTTPS host name's client; closed once evicted and no send uses it any more."""

    client: httpx.Client
    users: int = 0
    evicted: bool = False


class WebhookChannel:
    """Sends notifications of webhook subscriptions; thread-safe. ``client`` (plain HTTP) and
    ``tls`` (the certificate checks of HTTPS; by default httpx's: certifi's CAs) are for tests."""

    channel = "webhook"

    def __init__(self, policy: TargetPolicy, timeout: float = 5.0, client: httpx.Client | None = None, *,
                 tls: ssl.SSLContext | None = None, https_hosts: int = HTTPS_HOSTS) -> None:
        if timeout <= 0:
            raise ValueError(f"webhook timeout={timeout!r}: expected seconds > 0")
        self.timeout = timeout
        self._policy = policy
        self._tls = tls or httpx.create_ssl_context()  # loaded once: a CA bundle per client is slow
        self._client = client or self._new_client(httpx.Limits(max_connections=200, max_keepalive_connections=50))
        self._https: collections.OrderedDict[str, _HostClient] = collections.OrderedDict()
        self._https_max = max(1, https_hosts)
        self._lock = threading.Lock()
        self._closed = False

    def _new_client(self, limits: httpx.Limits) -> httpx.Client:
        return httpx.Client(
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 3.0)),
            limits=limits,
            headers={"User-Agent": "safewatch-webhook/1"},
            follow_redirects=False,  # a 3xx is the receiver's answer, not a new target to trust
            verify=self._tls,
        )

    @contextmanager
    def client_for(self, scheme: str, host: str) -> Iterator[httpx.Client]:
        """The client a request to ``host`` goes through: for HTTPS, that host name's own."""
        if scheme != "https":
            yield self._client
            return
        key = host.lower().rstrip(".")
        retired: list[httpx.Client] = []
        with self._lock:
            if self._closed:
                raise httpx.TransportError("the webhook channel is closed")
            entry = self._https.get(key)
            if entry is None:
                entry = self._https[key] = _HostClient(self._new_client(
                    httpx.Limits(max_connections=50, max_keepalive_connections=5)))
                while len(self._https) > self._https_max:
                    _, old = self._https.popitem(last=False)
                    old.evicted = True
                    if old.users == 0:
                        retired.append(old.client)
            self._https.move_to_end(key)
            entry.users += 1
        for c in retired:
            c.close()
        try:
            yield entry.client
        finally:
            with self._lock:
                entry.users -= 1
                done = entry.evicted and entry.users == 0
            if done:  # evicted while this send used it
                entry.client.close()

    def send(self, n: Notification) -> SendResult:
        to = n.recipient
        if to is None:
            return SendResult.give_up("webhook notification without a recipient")
        url = to.url
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
            "X-Safewatch-Signature": signature(to.secret, n.payload),
            "Host": urlsplit(url).netloc.rpartition("@")[2],
        }
        scheme = urlsplit(url).scheme.lower()
        # The request goes to the checked address; TLS still verifies the certificate for the name.
        extensions = {"sni_hostname": checked.host} if scheme == "https" else {}
        try:
            with self.client_for(scheme, checked.host) as client:
                resp = client.post(checked.url, content=n.payload, headers=headers, extensions=extensions)
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
        with self._lock:
            self._closed = True
            hosts, self._https = list(self._https.values()), collections.OrderedDict()
            idle = []
            for h in hosts:
                h.evicted = True  # one still sending closes its client when it is done
                if h.users == 0:
                    idle.append(h.client)
        for c in idle:
            c.close()
        self._client.close()
