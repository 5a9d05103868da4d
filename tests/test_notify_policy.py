"""Where notifications may go (contract section 6): a table of targets × verdicts, through the
policy, the API (422 naming the reason) and at send time (a name that re-resolves elsewhere)."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

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
    Recipient,
    SubscriptionTarget,
    TargetPolicy,
    TargetRefused,
    WebhookChannel,
)
from notify.policy import LocalAddresses
from store.state import StateStore
from tests.support.api import ADMIN, Api, build_api, district_of
from tests.support.helpers import wait_until
from tests.support.receiver import Receiver, receiver

INFLUX = "127.0.0.1:8086"
NAMES: dict[str, list[str]] = {
    "loop.example": ["127.0.0.3"],          # a public-looking name that resolves to loopback
    "meta.example": ["169.254.169.254"],
    "hooks.example": ["93.184.216.34"],
    "mixed.example": ["93.184.216.34", "127.0.0.9"],  # one bad address spoils the name
    "blocked.example": ["93.184.216.35"],
    "db.internal": ["10.0.0.5"],
    "influx.internal": ["127.0.0.1"],
    "alibaba.example": ["100.100.100.200"],
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
    # cloud metadata outside link-local
    ("http://100.100.100.200/latest/meta-data/", "cloud metadata"),  # Alibaba Cloud
    ("http://alibaba.example/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),  # AWS over IPv6
    ("http://[fd20:ce::254]/computeMetadata/v1/", "cloud metadata"),  # Google Cloud over IPv6
    # IPv6 addresses judged by the IPv4 address they carry
    ("http://[64:ff9b::7f00:2]:9000/hook", "carries 127.0.0.2, is a loopback"),  # NAT64
    ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "link-local"),
    ("http://[64:ff9b::7f00:1]:8086/query?q=DROP+DATABASE+d", "InfluxDB"),   # allowed address, own port
    ("http://[2002:a9fe:a9fe::1]/latest/meta-data/", "link-local"),          # 6to4
    ("http://[2002:7f00:2::1]:9000/hook", "loopback"),
    ("http://[::169.254.169.254]/latest/meta-data/", "link-local"),         # IPv4-compatible
    ("http://[::127.0.0.2]:9000/hook", "loopback"),
    ("http://[2002:a09:909::1]/hook", "SAFEWATCH_WEBHOOK_DENY"),            # carries 10.9.9.9, in a denied range
    ("http://[64:ff9b::5db8:d822]/hook", None),                              # carries 93.184.216.34
    ("http://[2002:5db8:d822::1]/hook", None),
    ("http://0.1.2.3/hook", "unspecified"),                                  # 0.0.0.0/8, "this network"
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
    ("d/alerts/commerce/+", "commerce", False, "wildcards"),
    ("d/alerts/+/red", "commerce", True, "wildcards"),
    ("d/alerts/commerce/red\x00/x", "commerce", False, "wildcards"),   # NUL ends a C string early
    ("d/alerts/commerce/", "commerce", False, "'d/alerts/commerce/'"),  # empty last level: the prefix itself
    ("d/alerts/", "commerce", True, "'d/alerts/'"),
    ("", "commerce", True, "wildcards"),
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

    def __init__(self, district: District, store: StateStore, rec: Receiver,
                 policy: TargetPolicy | None = None) -> None:
        self.names = {"hook.example": ["127.0.0.1"]}
        self.policy = policy or TargetPolicy.from_settings(Settings(webhook_allow="127.0.0.1"), district.name,
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
    pub = _Publisher()
    channel = MqttChannel(pub, policy())
    to = Recipient(url=topic, secret="", department="commerce", admin_scope=admin_scope)
    n = Notification(row_id=1, event_key="9", subject="alert", subject_id="1", channel="mqtt",
                     target=SubscriptionTarget("5"), department="commerce", site="S", metric="m",
                     payload=orjson.dumps({}), attempts=0, created_ms=0, recipient=to)
    result = channel.send(n)
    assert result.ok is sent and result.refused is not sent
    assert pub.topics == ([topic] if sent else [])


# -- numeric host forms, through the real resolver ------------------------------------------------------

@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "0177.0.0.1", "0x7f000001", "127.1"])
def test_numeric_forms_of_loopback_resolve_to_loopback(host: str) -> None:
    # getaddrinfo reads these as inet_aton does (no DNS query); ipaddress would not take them.
    plain = TargetPolicy("d")
    with pytest.raises(TargetRefused, match=r"\(127\.0\.0\.1\) is a loopback address"):
        plain.check_url(f"http://{host}:9000/hook")
    allowed = TargetPolicy.from_settings(Settings(webhook_allow="127.0.0.1", influx_url="http://127.0.0.1:8086"), "d")
    assert allowed.check_url(f"http://{host}:9000/hook").url == "http://127.0.0.1:9000/hook"
    with pytest.raises(TargetRefused, match="InfluxDB"):
        allowed.check_url(f"http://{host}:8086/query?q=DROP+DATABASE+d")


# -- a service on this machine, at this machine's other addresses -------------------------------------

def lan_address() -> str | None:
    """This machine's address on its default route: a UDP socket 'connected' to a TEST-NET address
    picks it without sending anything; None on a machine with loopback only."""
    for probe in ("192.0.2.1", "198.51.100.1", "203.0.113.1"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                addr = str(s.getsockname()[0])
        except OSError:
            continue
        if not ipaddress.ip_address(addr).is_loopback and not ipaddress.ip_address(addr).is_unspecified:
            return addr
    return None


class Listener:
    """A TCP listener on every interface (as InfluxDB 1.x listens by default) counting connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("0.0.0.0", 0))
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture
def lan() -> str:
    addr = lan_address()
    if addr is None:
        pytest.skip("this machine has no address besides loopback")
    return addr


def test_this_machines_addresses_are_local() -> None:
    local = LocalAddresses()
    for addr in ("127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "::"):
        assert local.holds(ipaddress.ip_address(addr)), addr
    # TEST-NET-2 and -3 and a documentation IPv6 address: bind() says EADDRNOTAVAIL, nothing is sent.
    for addr in ("198.51.100.77", "203.0.113.9", "2001:db8::77"):
        assert not local.holds(ipaddress.ip_address(addr)), addr
    ours = lan_address()
    if ours is not None:
        assert local.holds(ipaddress.ip_address(ours))


def test_local_addresses_from_the_kernel_tables_when_bind_cannot_tell(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "fib_trie").write_text(
        "Local:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 198.51.100.7\n        /32 host LOCAL\n"
        "     |-- 198.51.100.255\n        /32 link BROADCAST\n     |-- 203.0.113.0\n        /24 host LOCAL\n")
    (tmp_path / "net" / "if_inet6").write_text("20010db8000000000000000000000007 04 40 00 80 eth0\n")
    for version in ("ipv4", "ipv6"):  # bind() would succeed for any address: only the tables count
        (tmp_path / "sys" / "net" / version).mkdir(parents=True)
        (tmp_path / "sys" / "net" / version / "ip_nonlocal_bind").write_text("1\n")
    local = LocalAddresses(proc=tmp_path)
    for addr, mine in (("198.51.100.7", True), ("198.51.100.255", False), ("203.0.113.200", True),
                       ("2001:db8::7", True), ("2001:db8::8", False), ("198.51.100.8", False)):
        assert local.holds(ipaddress.ip_address(addr)) is mine, addr


@pytest.mark.parametrize("service", ["influx", "mqtt", "state", "api"])
def test_a_service_configured_as_loopback_is_refused_at_every_address_of_this_machine(
        listener: Listener, lan: str, service: str) -> None:
    port = listener.port
    settings = Settings(**{
        "influx": {"influx_url": f"http://127.0.0.1:{port}"},
        "mqtt": {"mqtt_url": f"mqtt://127.0.0.1:{port}"},
        "state": {"state_url": f"postgresql://sw@127.0.0.1:{port}/safewatch"},
        "api": {"api_host": "0.0.0.0", "api_port": port},
    }[service])  # type: ignore[arg-type]
    targets = TargetPolicy.from_settings(settings, "d")
    for url in (f"http://{lan}:{port}/query?q=DROP+DATABASE+d", f"http://127.0.0.2:{port}/",
                f"http://0.0.0.0:{port}/", f"http://[::1]:{port}/", f"http://[::ffff:{lan}]:{port}/"):
        with pytest.raises(TargetRefused, match="Safewatch's own services"):
            targets.check_url(url)
    assert targets.check_url(f"http://{lan}:{port + 1 if port < 65535 else port - 1}/hook")  # another port


def test_a_service_configured_at_the_lan_address_is_refused_on_loopback(listener: Listener, lan: str) -> None:
    targets = TargetPolicy.from_settings(Settings(influx_url=f"http://{lan}:{listener.port}",
                                                  webhook_allow="127.0.0.0/8"), "d")
    with pytest.raises(TargetRefused, match="InfluxDB"):
        targets.check_url(f"http://127.0.0.1:{listener.port}/query")


def test_influxdb_on_every_interface_is_refused_at_creation_and_at_send(
        tmp_path: Path, district: District, store: StateStore, listener: Listener, lan: str) -> None:
    """InfluxDB configured as 127.0.0.1 but listening on 0.0.0.0 (1.x's default): its LAN address is
    private, so it needs no allow entry, and without this check the POST would reach it."""
    url = f"http://{lan}:{listener.port}/query?q=DROP+DATABASE+d"
    settings = Settings(influx_url=f"http://127.0.0.1:{listener.port}", webhook_allow="127.0.0.1")
    # at creation, through the API
    state = StateStore(f"sqlite:///{tmp_path}/api.db")
    a = build_api(district_of("d"), state, None)
    a.ctx.targets = TargetPolicy.from_settings(settings, "d")
    try:
        r = a.client.post("/api/v1/subscriptions", headers=a.as_("commerce"), json={"channel": "webhook", "url": url})
        assert r.status_code == 422 and "InfluxDB" in r.json()["detail"], r.text
    finally:
        a.service.stop()
        state.close()
    # at send: a row from before this check (or written around the API)
    with receiver() as rec:
        s = Sender(district, store, rec, TargetPolicy.from_settings(settings, district.name))
        try:
            sub = s.store.create_subscription(department="commerce", channel="webhook", url=url, secret="k")
            s.fire(0, Severity.YELLOW)
            wait_until(lambda: s.store.outbox_depth() == 0, 5, "outbox drained")
            [row] = s.store.outbox_items(target=SubscriptionTarget(sub.id).key)
            assert row.status == "failed" and "InfluxDB" in (row.last_error or "") and row.attempts == 1
        finally:
            s.close()
    assert listener.accepted == 0


# -- what demo and bench allow ---------------------------------------------------------------------------

class _FakePopen:
    """Records the environment a child would get; the child has 'exited' at once."""

    envs: ClassVar[list[dict[str, str]]] = []
    returncode = 1
    pid = 0

    def __init__(self, argv: list[str], env: dict[str, str], **kwargs: Any) -> None:
        _FakePopen.envs.append(dict(env))

    def poll(self) -> int:
        return 1


def _policy_of(env: dict[str, str]) -> TargetPolicy:
    settings = Settings(mqtt_url=env["SAFEWATCH_MQTT_URL"], influx_url=env["SAFEWATCH_INFLUX_URL"],
                        state_url=env["SAFEWATCH_STATE_URL"], api_host=env.get("SAFEWATCH_API_HOST", "127.0.0.1"),
                        api_port=int(env["SAFEWATCH_API_PORT"]), webhook_allow=env["SAFEWATCH_WEBHOOK_ALLOW"])
    return TargetPolicy.from_settings(settings, "d")


def _fake_stack(tmp_path: Path) -> Any:
    from service.stack import StackInfo
    return StackInfo(tmp_path, mqtt_port=31883, influx_port=38086, mosquitto_pid=None, influxd_pid=None)


def test_bench_allows_its_loopback_probe_and_nothing_of_its_own(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from service.bench import procs
    monkeypatch.setattr(subprocess, "Popen", _FakePopen)
    _FakePopen.envs = []
    serve = procs.Serve(_fake_stack(tmp_path), tmp_path / "c.yaml", tmp_path / "s0", "sqlite:///x.db")
    serve.stop()
    [env] = _FakePopen.envs
    targets = _policy_of(env)
    targets.check_url("http://127.0.0.1:45678/hook")  # the latency probe's receiver (service/bench/probe.py)
    for port, name in ((serve.port, "own API"), (31883, "MQTT broker"), (38086, "InfluxDB")):
        with pytest.raises(TargetRefused, match=name):
            targets.check_url(f"http://127.0.0.1:{port}/")
    with pytest.raises(TargetRefused, match="link-local"):
        targets.check_url("http://169.254.169.254/latest/meta-data/")


def test_demo_allows_loopback_receivers_and_nothing_of_its_own(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from service import demo
    monkeypatch.setattr(subprocess, "Popen", _FakePopen)
    monkeypatch.delenv("SAFEWATCH_WEBHOOK_ALLOW", raising=False)
    _FakePopen.envs = []
    serve = demo.Serve(tmp_path / "c.yaml", tmp_path, _fake_stack(tmp_path), "tok", 38080)
    with pytest.raises(demo.DemoError, match="exited"):
        serve.start(timeout=5)
    [env] = _FakePopen.envs
    targets = _policy_of(env)
    for url in ("http://127.0.0.1:45678/hook", "http://[::1]:45678/hook", "http://localhost:45678/hook"):
        targets.check_url(url)
    for port, name in ((38080, "own API"), (31883, "MQTT broker"), (38086, "InfluxDB")):
        for host in ("127.0.0.1", "[::1]", "localhost"):
            with pytest.raises(TargetRefused, match=name):
                targets.check_url(f"http://{host}:{port}/")
