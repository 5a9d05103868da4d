"""Where notifications may go (contract section 6): a table of targets × verdicts, through the
policy, the API (422 naming the reason) and at send time (a name that re-resolves elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from alerting.lifecycle import Lifecycle
from alerting.route import Router
from domain import District, Severity, load_district
from domain.alerts import AlertKey, Signal
from domain.settings import Settings
from notify import (
    DeliveryMetrics,
    DeliveryOptions,
    DeliveryWorker,
    MqttChannel,
    Notification,
    Planner,
    SubscriptionTarget,
    TargetPolicy,
    TargetRefused,
    WebhookChannel,
)
from store.state import StateStore
from tests.helpers import wait_until
from tests.support.receiver import Receiver, receiver
from tests.test_api.conftest import ADMIN, Api, build_api, district_of

INFLUX = "127.0.0.1:8086"
NAMES: dict[str, list[str]] = {
    "loop.example": ["127.0.0.3"],          # a public-looking name that resolves to loopback
    "meta.example": ["169.254.169.254"],
    "hooks.example": ["93.184.216.34"],
    "mixed.example": ["93.184.216.34", "127.0.0.9"],  # one bad address spoils the name
    "blocked.example": ["93.184.216.35"],
    "db.internal": ["10.0.0.5"],
    "influx.internal": ["127.0.0.1"],
}


def resolver(names: dict[str, list[str]]) -> object:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in names:
            raise OSError(f"{host}: unknown name")
        return names[host]
    return resolve


SETTINGS = Settings(
    influx_url=f"http://{INFLUX}", mqtt_url="mqtt://127.0.0.1:1883",
    state_url="postgresql://sw@db.internal:5432/safewatch", api_host="0.0.0.0", api_port=8080,
    webhook_allow="127.0.0.1, 169.254.10.0/24, loop.allowed", webhook_deny="blocked.example, 10.9.9.0/24")


def policy(names: dict[str, list[str]] | None = None, settings: Settings = SETTINGS) -> TargetPolicy:
    table = dict(NAMES, **{"loop.allowed": ["127.0.0.1"]}) if names is None else names
    return TargetPolicy.from_settings(settings, "d", resolver=resolver(table))  # type: ignore[arg-type]


# url, refused because (a word of the reason) or None when it may go there
URLS = [
    (f"http://{INFLUX}/query?q=DROP+DATABASE+d", "InfluxDB"),      # allowed host, but InfluxDB's port
    ("http://influx.internal:8086/query?q=DROP+DATABASE+d", "InfluxDB"),  # by another name
    ("http://127.0.0.1:1883/", "MQTT broker"),
    ("http://db.internal:5432/", "state database"),
    ("http://10.0.0.5:5432/", "state database"),
    ("http://127.0.0.1:8080/api/v1/tokens", "own API"),               # the API listens on 0.0.0.0
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://meta.example/latest/meta-data/", "link-local"),
    ("http://[fe80::1]:9000/", "link-local"),
    ("http://[::1]:9000/hook", "loopback"),
    ("http://[::ffff:127.0.0.2]:9000/hook", "loopback"),
    ("http://0.0.0.0:9000/hook", "unspecified"),
    ("http://loop.example:9000/hook", "loopback"),
    ("http://mixed.example/hook", "loopback"),
    ("http://127.0.0.2:9000/hook", "loopback"),                        # the allow list names .1 only
    ("http://blocked.example/hook", "SAFEWATCH_WEBHOOK_DENY"),
    ("http://10.9.9.9/hook", "SAFEWATCH_WEBHOOK_DENY"),
    ("ftp://hooks.example/hook", "https"),
    ("http://127.0.0.1:9000/hook", None),                             # named by the allow list
    ("http://loop.allowed:9000/hook", None),                          # a host name the allow list names
    ("http://169.254.10.5/hook", None),                               # in an allowed range
    ("https://hooks.example/hook", None),
    ("http://10.9.8.1:8086/hook", None),                              # InfluxDB's port, another host
]


@pytest.mark.parametrize(("url", "reason"), URLS)
def test_where_a_webhook_may_go(url: str, reason: str | None) -> None:
    if reason is None:
        checked = policy().check_url(url)
        assert checked.address in checked.url  # the send goes to the address that was checked
        return
    with pytest.raises(TargetRefused, match=reason):
        policy().check_url(url)


@pytest.mark.parametrize(("topic", "department", "admin", "reason"), [
    ("d/alerts/commerce/red", "commerce", False, None),
    ("d/alerts/commerce/feed/x", "commerce", False, None),
    ("d/alerts/police/red", "commerce", False, "'d/alerts/commerce/'"),
    ("d/alerts/commerce", "commerce", False, "'d/alerts/commerce/'"),
    ("d/hazards/commerce/x", "commerce", False, "'d/alerts/commerce/'"),
    ("other/alerts/commerce/red", "commerce", False, "'d/alerts/commerce/'"),
    ("d/alerts/police/red", "commerce", True, None),
    ("d/readings", "commerce", True, "'d/alerts/'"),
    ("d/alerts/#", "commerce", True, "wildcards"),
])
def test_where_an_mqtt_subscription_may_publish(topic: str, department: str, admin: bool,
                                                reason: str | None) -> None:
    if reason is None:
        policy().check_topic(topic, department, admin)
        return
    with pytest.raises(TargetRefused, match=reason):
        policy().check_topic(topic, department, admin)


@pytest.mark.parametrize("setting", ["webhook_allow", "webhook_deny"])
def test_unreadable_lists_are_refused_naming_the_setting(setting: str) -> None:
    with pytest.raises(ValueError, match=f"SAFEWATCH_{setting.upper()} entry '10.0.0.0/33'"):
        policy(settings=Settings(**{setting: "10.0.0.0/33"}))  # type: ignore[arg-type]


# -- through the API ------------------------------------------------------------------------------------

@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    state = StateStore(f"sqlite:///{tmp_path}/state.db")
    district = district_of("d")
    a = build_api(district, state, None)
    a.ctx.targets = policy()
    yield a
    a.service.stop()
    state.close()


@pytest.mark.parametrize(("url", "reason"), URLS)
def test_the_api_refuses_a_webhook_subscription_naming_the_reason(api: Api, url: str, reason: str | None) -> None:
    r = api.client.post("/api/v1/subscriptions", headers=api.as_("commerce"),
                        json={"channel": "webhook", "url": url})
    if reason is None:
        assert r.status_code == 201, r.text
    else:
        assert r.status_code == 422 and reason in r.json()["detail"], r.text


@pytest.mark.parametrize(("who", "topic", "status"), [
    ("commerce", "d/alerts/commerce/mine", 201),
    ("commerce", "d/alerts/police/red", 422),
    ("admin", "d/alerts/police/ops", 201),
    ("admin", "d/elsewhere", 422),
])
def test_the_api_keeps_mqtt_subscriptions_under_their_prefix(api: Api, who: str, topic: str, status: int) -> None:
    headers = ADMIN if who == "admin" else api.as_(who)
    body = {"channel": "mqtt", "url": topic} | ({"department": "commerce"} if who == "admin" else {})
    r = api.client.post("/api/v1/subscriptions", headers=headers, json=body)
    assert r.status_code == status, r.text
    if status == 422:
        assert "publish only under" in r.json()["detail"]


# -- at send time -----------------------------------------------------------------------------------------

T0 = 1_764_300_000_000
FAST = DeliveryOptions(workers=2, lease_s=30, backoff_base_s=0.05, backoff_cap_s=0.2, poll_s=0.05)


@pytest.fixture(scope="module")
def district() -> District:
    return load_district(Path(__file__).with_name("contract_example.yaml"))


class Sender:
    """Lifecycle + delivery with a resolver the test changes between creation and send."""

    def __init__(self, district: District, store: StateStore, rec: Receiver) -> None:
        self.names = {"hook.example": ["127.0.0.1"]}
        self.policy = TargetPolicy.from_settings(Settings(webhook_allow="127.0.0.1"), district.name,
                                                 resolver=resolver(self.names))  # type: ignore[arg-type]
        self.store, self.rec = store, rec
        self.registry = CollectorRegistry()
        self.lifecycle = Lifecycle(district, store, Router(district), Planner(district.name, district.tz, False))
        self.channel = WebhookChannel(self.policy, timeout=2.0)
        self.worker = DeliveryWorker(store, {"webhook": self.channel}, DeliveryMetrics(self.registry), FAST)
        self.worker.start()

    def fire(self, at_s: float, sev: Severity | None) -> None:
        key = AlertKey("vapor-level", "GS-001", "d1", "vapor_lel")
        at = T0 + int(at_s * 1000)
        sig = Signal.clear(key, family="gas_station", kind="threshold", at_ms=at, value=30.0) if sev is None else \
            Signal.fire(key, family="gas_station", kind="threshold", at_ms=at, severity=sev, value=30.0,
                        threshold=20.0, message="vapour")
        self.lifecycle.apply([sig])
        self.worker.kick()

    def close(self) -> None:
        self.worker.stop()
        self.channel.close()


@pytest.fixture
def sender(district: District, store: StateStore) -> Iterator[Sender]:
    with receiver() as rec:
        s = Sender(district, store, rec)
        yield s
        s.close()


def test_a_name_that_later_resolves_elsewhere_is_refused_at_send(sender: Sender) -> None:
    url = f"http://hook.example:{sender.rec.port}/h"
    sender.policy.check_subscription("webhook", url, "commerce", False)  # what the API does at creation
    sub = sender.store.create_subscription(department="commerce", channel="webhook", url=url, secret="k")
    sender.fire(0, Severity.YELLOW)
    [call] = sender.rec.wait_for("/h", 1)
    assert call.headers["host"] == f"hook.example:{sender.rec.port}" and call.signed_by("k")
    sender.names["hook.example"] = ["169.254.169.254"]  # the name now points at cloud metadata
    sender.fire(1, Severity.RED)
    wait_until(lambda: sender.store.outbox_depth() == 0, 5, "outbox drained")
    rows = sender.store.outbox_items(target=SubscriptionTarget(sub.id).key)
    assert [r.status for r in rows] == ["delivered", "failed"]
    assert "link-local" in (rows[1].last_error or "") and rows[1].attempts == 1  # not retried
    assert len(sender.rec.received("/h", ok_only=False)) == 1
    assert sender.registry.get_sample_value("safewatch_notifications_refused_total", {"channel": "webhook"}) == 1


def test_redirects_are_not_followed(sender: Sender) -> None:
    url = sender.rec.script("/moved", [302])
    sub = sender.store.create_subscription(department="commerce", channel="webhook", url=url)
    sender.fire(0, Severity.YELLOW)
    wait_until(lambda: sender.store.outbox_depth() == 0, 5, "outbox drained")
    [row] = sender.store.outbox_items(target=SubscriptionTarget(sub.id).key)
    assert row.status == "failed" and "HTTP 302" in (row.last_error or "") and row.attempts == 1
    assert len(sender.rec.received("/moved", ok_only=False)) == 1


class _Publisher:
    def __init__(self) -> None:
        self.topics: list[str] = []

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                wait: bool = False, timeout: float = 10.0) -> None:
        self.topics.append(topic)


@pytest.mark.parametrize(("topic", "admin_scope", "sent"), [
    ("d/alerts/commerce/feed", False, True),
    ("d/alerts/police/red", False, False),   # a row from before the policy, or a forged one
    ("d/alerts/police/red", True, True),
])
def test_mqtt_subscriptions_are_checked_again_at_send(topic: str, admin_scope: bool, sent: bool) -> None:
    from datetime import UTC, datetime

    from store.state.records import Subscription
    pub = _Publisher()
    channel = MqttChannel(pub, policy())
    sub = Subscription("5", "commerce", "mqtt", topic, "", Severity.BLUE, (), (), (), datetime.now(UTC),
                       admin_scope=admin_scope)
    n = Notification(row_id=1, event_key="9", subject="alert", subject_id="1", channel="mqtt",
                     target=SubscriptionTarget("5"), department="commerce", site="S", metric="m",
                     payload=orjson.dumps({}), attempts=0, created_ms=0, subscription=sub)
    result = channel.send(n)
    assert result.ok is sent and result.refused is not sent
    assert pub.topics == ([topic] if sent else [])
