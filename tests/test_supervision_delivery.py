"""Hazard events reach the hazard's departments by webhook and under
``{district}/hazards/{department}/{level}`` on the real Mosquitto, through the process's notify
service (the one the alerts use): ``min_severity`` does not filter them, the site filter does, and
an overdue step notifies the departments it adds. Each event's notice is built once: the outbox
rows and the SSE stream share it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from alerting.service import AlertService
from domain.severity import Severity
from notify import Notice, NotifyService, TargetPolicy
from service.hazards import start_supervision
from service.stack import StackInfo
from store.state import StateStore
from store.state.records import dt_to_ms
from supervision.notices import HazardNotices
from supervision.service import SupervisionService
from tests.support.e2e.webhooks import WebhookReceiver
from tests.support.helpers import cli_subscribe, wait_until
from tests.support.supervision import ADMIN, SITE_S1, district
from transport.mqtt import MqttClient


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


def test_hazard_events_by_webhook_and_mqtt(stack: StackInfo, store: StateStore, receiver: WebhookReceiver) -> None:
    name = f"h{uuid.uuid4().hex[:8]}"
    d = district(name)
    publisher = MqttClient(stack.mqtt_url, f"{name}-notify")
    publisher.connect(10)
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start()
    notify = NotifyService(store, TargetPolicy(name, allow="127.0.0.1"), publisher=publisher)
    alerts = AlertService(d, store, notify=notify)
    alerts.start(scheduler)
    notify.start()
    sup = start_supervision(d, store, alerts, notify, scheduler)
    try:
        store.create_subscription(department="trade", channel="webhook", url=receiver.url("/trade"),
                                  secret="s3cret", min_severity=Severity.RED)
        store.create_subscription(department="trade", channel="webhook", url=receiver.url("/only-s2"),
                                  sites=["S2"])
        store.create_subscription(department="bureau", channel="webhook", url=receiver.url("/bureau"))
        got: list[bytes] = []
        sub = threading.Thread(target=lambda: got.extend(
            cli_subscribe(stack, f"{name}/hazards/trade/#", count=1, timeout=15)))
        sub.start()
        threading.Event().wait(1.0)  # mosquitto_sub is subscribed before the event is published
        h = sup.ledger.file(SITE_S1, "S1", "加油机漏油").hazard
        wait_until(lambda: len(receiver.events("/trade")) >= 1, 15, "hazard_listed at the trade webhook")
        sub.join(20)
        body = receiver.events("/trade")[0]
        assert (body["type"], body["department"], body["hazard"]["id"]) == ("hazard_listed", "trade", h.id)
        assert str(body["event_id"]).startswith("hazard-")
        assert receiver.deliveries("/trade")[0].signature_ok("s3cret")
        assert got and orjson.loads(got[0])["type"] == "hazard_listed"
        sup.run_overdue(dt_to_ms(h.deadline) + 86_400_000 + 1)  # steps 1 and 2: bureau is added
        wait_until(lambda: any(e["type"] == "hazard_overdue" for e in receiver.events("/bureau")), 15,
                   "hazard_overdue at the bureau webhook")
        assert receiver.events("/only-s2") == []  # its site filter keeps S1's hazard out
    finally:
        sup.stop()
        alerts.stop()
        notify.stop()
        scheduler.shutdown(wait=False)
        publisher.close()


def test_sse_carries_hazard_events_of_other_processes(make_store: Callable[[], StateStore]) -> None:
    d = district(f"h{uuid.uuid4().hex[:8]}")
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start()
    procs = [AlertService(d, make_store()) for _ in range(2)]
    sups = [start_supervision(d, p.state, p, p.notify, scheduler) for p in procs]
    subs = [p.broadcaster.subscribe() for p in procs]
    try:
        h = sups[0].ledger.file(SITE_S1, "S1", "配电箱未上锁").hazard
        for sub in subs:  # the filing process publishes it itself, the other relays it from the book
            notice = sub.get(timeout=10)
            assert notice is not None and (notice.subject, notice.subject_id, notice.type) == \
                ("hazard", h.id, "hazard_listed")
            assert notice.payload(None).startswith(b'{"event_id":"hazard-')
        time.sleep(1.5)  # a few polls more: nothing is relayed twice, nor back to its own process
        assert [s.get(timeout=0.1) for s in subs] == [None, None]
    finally:
        for s in sups:
            s.stop()
        for p in procs:
            p.stop()
        scheduler.shutdown(wait=False)


class _Notify:
    """A notify service's face that records what supervision hands it."""

    mqtt_topics = False

    def __init__(self) -> None:
        self.published: list[Notice] = []
        self.kicks = 0

    def publish(self, notices: Iterable[Notice]) -> None:
        self.published.extend(notices)

    def kick(self) -> None:
        self.kicks += 1


def test_a_hazard_event_is_rendered_once_for_its_rows_and_its_stream(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    d = district(f"h{uuid.uuid4().hex[:8]}")
    notify = _Notify()
    notices = HazardNotices(d.name, d.tz, notify)
    built: list[Notice] = []
    render = notices.notice

    def counted(*args: Any, **kwargs: Any) -> Notice:
        built.append(render(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(notices, "notice", counted)
    store.create_subscription(department="trade", channel="webhook", url="http://127.0.0.1:9/x")
    sup = SupervisionService(d, store, notices)
    h = sup.ledger.file(SITE_S1, "S1", "加油机漏油").hazard
    sup.ledger.progress(ADMIN, h.id, "不通知")  # on the record only: no notice, no rows
    [notice] = built
    assert notify.published == [notice] and notify.published[0] is notice and notify.kicks == 1
    [row] = store.outbox_items(event_key=notice.event_key)
    assert row.payload == notice.payload("trade")
