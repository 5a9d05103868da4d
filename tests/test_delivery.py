"""Delivery: the webhook notifier against a real HTTP receiver, and the outbox worker's stages."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from alerting.lifecycle import Lifecycle
from alerting.route import Router
from domain import District, Severity, load_district
from domain.alerts import AlertKey, Signal
from domain.clock import now_ms
from notify import (
    DeliveryMetrics,
    DeliveryOptions,
    DeliveryWorker,
    Notification,
    Planner,
    Recipient,
    SendResult,
    SubscriptionTarget,
    TargetPolicy,
    TopicTarget,
    WebhookChannel,
    backoff_s,
    signature,
)
from store.state import StateStore
from tests.support.helpers import wait_until
from tests.support.receiver import Receiver, receiver

T0 = 1_764_300_000_000
LOOPBACK = TargetPolicy("xicheng", allow="127.0.0.1")  # the test receivers listen on loopback
FAST = DeliveryOptions(workers=4, lease_s=30, backoff_base_s=0.05, backoff_cap_s=0.2, poll_s=0.05)


@pytest.fixture(scope="module")
def district() -> District:
    return load_district(Path(__file__).with_name("contract_example.yaml"))


@pytest.fixture
def rec() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def _note(to: Recipient, payload: bytes = b'{"alert": {"site": "S", "metric": "m"}}') -> Notification:
    return Notification(row_id=1, event_key="42", subject="alert", subject_id="7", channel="webhook",
                        target=SubscriptionTarget("3"), department="commerce", site="S", metric="m",
                        payload=payload, attempts=0, created_ms=0, recipient=to)


def _sub(url: str, secret: str = "s3cret") -> Recipient:
    return Recipient(url=url, secret=secret, department="commerce")


def _key(sub_id: str) -> str:
    """A subscription's FIFO key in the outbox, as notify builds it."""
    return SubscriptionTarget(sub_id).key


@pytest.mark.parametrize(("status", "ok", "retryable"), [
    (200, True, False), (204, True, False), (202, True, False),
    (500, False, True), (502, False, True), (503, False, True),
    (408, False, True), (429, False, True),
    (400, False, False), (401, False, False), (404, False, False), (410, False, False), (301, False, False),
])
def test_webhook_status_handling(rec: Receiver, status: int, ok: bool, retryable: bool) -> None:
    n = WebhookChannel(LOOPBACK, timeout=2.0)
    try:
        result = n.send(_note(_sub(rec.script("/h", [status]))))
    finally:
        n.close()
    assert (result.ok, result.retryable) == (ok, retryable)
    if not ok:
        assert str(status) in result.error and "/h" in result.error
    if status == 429:
        assert result.retry_after_s == 0.0


def test_webhook_request_follows_the_contract(rec: Receiver) -> None:
    body = b'{"event_id": 42, "alert": {"site": "S", "metric": "m"}}'
    n = WebhookChannel(LOOPBACK)
    try:
        assert n.send(_note(_sub(rec.script("/sig", [200]), secret="k3y"), body)).ok
    finally:
        n.close()
    [call] = rec.received("/sig")
    assert call.body == body
    assert call.headers["content-type"] == "application/json"
    assert call.headers["x-safewatch-event-id"] == "42"
    assert call.headers["x-safewatch-signature"] == signature("k3y", body)
    assert call.signed_by("k3y") and not call.signed_by("other")


@pytest.mark.parametrize(("url", "retryable"), [
    ("http://127.0.0.1:1/refused", True),  # nothing listens: the receiver may come back
    ("gopher://127.0.0.1/x", False),
])
def test_webhook_unreachable(url: str, retryable: bool) -> None:
    n = WebhookChannel(LOOPBACK, timeout=2.0)
    try:
        result = n.send(_note(_sub(url)))
    finally:
        n.close()
    assert not result.ok and result.retryable is retryable


def test_webhook_timeout_is_per_receiver_and_retryable(rec: Receiver) -> None:
    n = WebhookChannel(LOOPBACK, timeout=0.3)
    try:
        start = time.monotonic()
        result = n.send(_note(_sub(rec.script("/slow", [200], delay=2.0))))
        took = time.monotonic() - start
    finally:
        n.close()
    assert not result.ok and result.retryable and "0.3s" in result.error
    assert took < 1.5


def test_backoff_grows_and_is_capped() -> None:
    opts = DeliveryOptions(backoff_base_s=1, backoff_cap_s=60)
    rng = random.Random(1)
    mid = [(a, backoff_s(a, opts, rng)) for a in (1, 2, 3, 4, 5, 6, 7, 40, 10_000)]
    for attempts, delay in mid:
        expected = min(60, 2 ** (attempts - 1))
        assert 0.8 * expected <= delay <= 1.2 * expected, (attempts, delay)


@pytest.mark.parametrize("bad", [{"workers": 0}, {"backoff_cap_s": -1}, {"lease_s": 0}])
def test_delivery_options_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        DeliveryOptions(**bad)  # type: ignore[arg-type]


# -- the worker on a real state database ---------------------------------------------------------

def _signal(at_s: float, sev: Severity | None, device: str = "d1") -> Signal:
    key, at = AlertKey("vapor-level", "GS-001", device, "vapor_lel"), T0 + int(at_s * 1000)
    if sev is None:
        return Signal.clear(key, family="gas_station", kind="threshold", at_ms=at, value=30.0, message="vapour")
    return Signal.fire(key, family="gas_station", kind="threshold", at_ms=at, severity=sev, value=30.0,
                       threshold=20.0, message="vapour")


class Rig:
    def __init__(self, district: District, store: StateStore, options: DeliveryOptions = FAST) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        self.lifecycle = Lifecycle(district, store, Router(district),
                                   Planner(district.name, district.tz, mqtt_topics=False))
        self.notifier = WebhookChannel(LOOPBACK, timeout=1.0)
        self.worker = DeliveryWorker(store, {"webhook": self.notifier}, DeliveryMetrics(self.registry),
                                     options)

    def apply(self, *signals: Signal) -> None:
        self.lifecycle.apply(list(signals))
        self.worker.kick()

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def close(self) -> None:
        self.worker.stop()
        self.notifier.close()


@pytest.fixture
def rig(district: District, store: StateStore) -> Iterator[Rig]:
    r = Rig(district, store)
    r.worker.start()
    yield r
    r.close()


def test_failing_receiver_gets_every_event_in_order(rig: Rig, rec: Receiver) -> None:
    url = rec.script("/flaky", [500, 503, 500, 200])
    sub = rig.store.create_subscription(department="commerce", channel="webhook", url=url, secret="x")
    rig.apply(_signal(0, Severity.YELLOW))
    rig.apply(_signal(1, Severity.RED))
    rig.apply(_signal(2, None))
    calls = rec.wait_for("/flaky", 3)
    assert [c.json["type"] for c in calls] == ["fired", "severity_changed", "resolved"]
    ids = [c.json["event_id"] for c in calls]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert all(c.signed_by("x") for c in calls)
    assert len(rec.received("/flaky", ok_only=False)) == 6  # three failures, then each event once
    wait_until(lambda: rig.store.outbox_depth() == 0, 5, "outbox drained")
    rows = rig.store.outbox_items(target=_key(sub.id))
    assert [(r.status, r.attempts) for r in rows] == [("delivered", 4), ("delivered", 1), ("delivered", 1)]
    assert rig.metric("safewatch_notifications_sent_total", channel="webhook") == 3
    assert rig.metric("safewatch_notifications_failed_total", channel="webhook", retry="yes") == 3


def test_final_failure_is_recorded_and_does_not_block_the_queue(rig: Rig, rec: Receiver) -> None:
    url = rec.script("/gone", [404, 200])
    sub = rig.store.create_subscription(department="commerce", channel="webhook", url=url)
    rig.apply(_signal(0, Severity.YELLOW), _signal(1, Severity.RED))
    [call] = rec.wait_for("/gone", 1)
    assert call.json["type"] == "severity_changed"
    wait_until(lambda: rig.store.outbox_depth() == 0, 5, "outbox drained")
    rows = rig.store.outbox_items(target=_key(sub.id))
    assert [r.status for r in rows] == ["failed", "delivered"]
    assert "HTTP 404" in (rows[0].last_error or "")
    assert len(rec.received("/gone", ok_only=False)) == 2  # the 404 was not retried


def test_silences_hold_back_notifications_not_the_record(rig: Rig, rec: Receiver) -> None:
    commerce = rig.store.create_subscription(department="commerce", channel="webhook", url=rec.url("/c"))
    street = rig.store.create_subscription(department="street_jinrongjie", channel="webhook", url=rec.url("/s"))
    rig.store.create_silence(site="GS-001", metric="vapor_lel", until=datetime.now(UTC) + timedelta(hours=1),
                             department="commerce", created_by="commerce")
    rig.apply(_signal(0, Severity.YELLOW))
    rec.wait_for("/s", 1)
    wait_until(lambda: rig.store.outbox_depth() == 0, 5, "outbox drained")
    assert rec.received("/c") == []
    [row] = rig.store.outbox_items(target=_key(commerce.id))
    assert row.status == "silenced" and "silence" in (row.last_error or "")
    assert rig.store.outbox_items(target=_key(street.id))[0].status == "delivered"
    assert len(rig.store.list_alerts()) == 1  # recorded all the same


def test_a_still_firing_alert_is_notified_when_its_silence_ends(rig: Rig, rec: Receiver) -> None:
    rig.store.create_subscription(department="commerce", channel="webhook", url=rec.url("/c"))
    rig.store.create_silence(site="GS-001", until=datetime.now(UTC) + timedelta(seconds=1.5),
                             department="commerce")
    rig.apply(_signal(0, Severity.YELLOW), _signal(1, Severity.RED))  # d1: still firing at the end
    rig.apply(_signal(0, Severity.YELLOW, "d2"), _signal(1, None, "d2"))  # d2: over before the end
    wait_until(lambda: rig.store.outbox_depth() == 0, 5, "outbox drained")
    assert rig.worker.release_silenced() == 0  # the silence still holds
    time.sleep(1.6)
    assert rig.worker.release_silenced() == 1
    [call] = rec.wait_for("/c", 1)
    assert (call.json["type"], call.json["alert"]["device"]) == ("severity_changed", "d1")
    assert rig.worker.release_silenced() == 0  # once


def test_deleted_subscription_drops_its_rows(district: District, store: StateStore, rec: Receiver) -> None:
    rig = Rig(district, store)
    try:
        sub = store.create_subscription(department="commerce", channel="webhook", url=rec.url("/x"))
        rig.apply(_signal(0, Severity.YELLOW))
        store.delete_subscription(sub.id)
        rig.worker.start()
        wait_until(lambda: store.outbox_depth() == 0, 5, "outbox drained")
        assert [r.status for r in store.outbox_items()] == ["dropped"]
        assert rec.received("/x") == []
    finally:
        rig.close()


def test_slow_receiver_does_not_delay_others(rig: Rig, rec: Receiver) -> None:
    rig.store.create_subscription(department="commerce", channel="webhook",
                                  url=rec.script("/slow", [200], delay=0.8))
    rig.store.create_subscription(department="street_jinrongjie", channel="webhook", url=rec.url("/fast"))
    start = time.monotonic()
    for i in range(4):
        rig.apply(_signal(i, None if i % 2 else Severity.YELLOW))
    fast = rec.wait_for("/fast", 4, timeout=10)
    fast_done = fast[-1].at - start
    rec.wait_for("/slow", 4, timeout=15)
    slow_done = rec.received("/slow")[-1].at - start
    assert fast_done < 1.0, fast_done  # while the slow one needs 4 × 0.8 s
    assert slow_done > 2.4


def test_pending_rows_survive_a_restart(district: District, make_store, rec: Receiver) -> None:
    """A process that died after committing, holding a claim, leaves rows the next one delivers
    once the lease ends, in order."""
    first_store = make_store()
    first_store.create_subscription(department="commerce", channel="webhook", url=rec.url("/later"))
    dead = Rig(district, first_store)  # its worker never runs: the process died
    dead.apply(_signal(0, Severity.YELLOW), _signal(1, None))
    [claimed] = first_store.claim_heads(now_ms(), lease_ms=700)
    start = time.monotonic()
    alive = Rig(district, make_store())
    alive.worker.start()
    try:
        calls = rec.wait_for("/later", 2)
        assert [c.json["type"] for c in calls] == ["fired", "resolved"]
        assert calls[0].json["event_id"] == claimed.event_id
        assert calls[0].at - start >= 0.6  # not before the dead process's lease ended
    finally:
        alive.close()
        dead.close()


class _Exploding:
    channel = "webhook"

    def send(self, n: Notification) -> SendResult:
        raise RuntimeError("bug in a notifier")

    def close(self) -> None:
        pass


def test_a_notifier_bug_is_retried_not_fatal(district: District, store: StateStore) -> None:
    store.create_subscription(department="commerce", channel="webhook", url="http://127.0.0.1:9/x")
    lc = Lifecycle(district, store, Router(district), Planner(district.name, district.tz, mqtt_topics=False))
    lc.apply([_signal(0, Severity.YELLOW)])
    worker = DeliveryWorker(store, {"webhook": _Exploding()}, DeliveryMetrics(CollectorRegistry()), FAST)
    [item] = store.claim_heads(10**13, 1000)
    assert worker.process(item) is False
    [row] = store.outbox_items()
    assert row.status == "pending" and row.attempts == 1 and "bug in a notifier" in (row.last_error or "")


class _Recording:
    """A channel that keeps what it was given to send."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[Notification] = []

    def send(self, n: Notification) -> SendResult:
        self.sent.append(n)
        return SendResult.success()

    def close(self) -> None:
        pass


def test_channels_get_a_typed_target_and_recipient_never_a_record(district: District, store: StateStore) -> None:
    sub = store.create_subscription(department="commerce", channel="webhook", url="http://127.0.0.1:9/x",
                                    secret="k")
    lc = Lifecycle(district, store, Router(district), Planner(district.name, district.tz, mqtt_topics=True))
    lc.apply([_signal(0, Severity.YELLOW)])
    webhook, mqtt = _Recording("webhook"), _Recording("mqtt")
    worker = DeliveryWorker(store, {"webhook": webhook, "mqtt": mqtt}, DeliveryMetrics(CollectorRegistry()), FAST)
    for item in store.claim_heads(10**13, 1000):
        assert worker.process(item)
    [n] = webhook.sent
    assert n.target == SubscriptionTarget(sub.id)
    assert n.recipient == Recipient(url="http://127.0.0.1:9/x", secret="k", department="commerce")
    topics = {m.target for m in mqtt.sent}
    assert topics == {TopicTarget(f"{district.name}/alerts/{d}/yellow") for d in ("commerce", "street_jinrongjie")}
    assert all(m.recipient is None for m in mqtt.sent)


def test_the_silence_stage_reads_the_worker_clock(district: District, store: StateStore) -> None:
    store.create_subscription(department="commerce", channel="webhook", url="http://127.0.0.1:9/x")
    until = datetime.now(UTC) + timedelta(hours=1)
    store.create_silence(site="GS-001", until=until, department="commerce")
    lc = Lifecycle(district, store, Router(district), Planner(district.name, district.tz, mqtt_topics=False))
    lc.apply([_signal(0, Severity.YELLOW), _signal(1, Severity.RED)])
    later = int(until.timestamp() * 1000) + 1  # the worker's time is past the silence's end
    channel = _Recording("webhook")
    worker = DeliveryWorker(store, {"webhook": channel}, DeliveryMetrics(CollectorRegistry()), FAST,
                            clock=lambda: later)
    [item] = store.claim_heads(later, 1000)
    assert worker.process(item) and len(channel.sent) == 1  # sent: not held by a silence over by then
    now = DeliveryWorker(store, {"webhook": channel}, DeliveryMetrics(CollectorRegistry()), FAST)
    [item] = store.claim_heads(later, 1000)
    assert now.process(item) and len(channel.sent) == 1
    assert [r.status for r in store.outbox_items()] == ["delivered", "silenced"]
