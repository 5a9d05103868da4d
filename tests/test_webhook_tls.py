"""HTTPS webhooks go to the checked address, with the host name for SNI and the certificate check,
and never share a connection between host names: a connection verified for one name must not
carry a request for another name that resolves to the same address (notify/channels/webhook.py)."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from notify import Notification, Recipient, SubscriptionTarget, TargetPolicy, WebhookChannel

NAMES = ("a.example", "b.example")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for both names (the openssl command line; no network)."""
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=a.example",
                    "-addext", "subjectAltName=DNS:a.example,DNS:b.example"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


class TlsReceiver:
    """An HTTPS server on 127.0.0.1 recording, per request, the Host header, the TLS server name
    the client sent, and the client's port (one port = one connection)."""

    def __init__(self, crt: Path, key: Path) -> None:
        self.requests: list[tuple[str, str | None, int]] = []
        self._sni: dict[int, str | None] = {}
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(crt, key)
        me = self

        def on_sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
            me._sni[id(sock)] = name

        ctx.sni_callback = on_sni  # type: ignore[assignment]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so reuse would show

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                me.requests.append((self.headers["Host"], me._sni.get(id(self.connection)),
                                    int(self.client_address[1])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.socket = ctx.wrap_socket(self.http.socket, server_side=True)
        self.port = int(self.http.server_address[1])
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def tls_receiver(cert: tuple[Path, Path]) -> Iterator[TlsReceiver]:
    rec = TlsReceiver(*cert)
    yield rec
    rec.close()


def channel(crt: Path, **kwargs: Any) -> WebhookChannel:
    def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # both names at one address, as behind one load balancer
    policy = TargetPolicy("d", allow="127.0.0.1,a.example,b.example", resolver=resolve)
    return WebhookChannel(policy, timeout=5.0, tls=ssl.create_default_context(cafile=str(crt)), **kwargs)


def notification(url: str) -> Notification:
    return Notification(row_id=1, event_key="9", subject="alert", subject_id="1", channel="webhook",
                        target=SubscriptionTarget("5"), department="commerce", site="S", metric="m",
                        payload=b"{}", attempts=0, created_ms=0, recipient=Recipient(url, "k", "commerce"))


def test_two_host_names_at_one_address_never_share_a_connection(cert: tuple[Path, Path],
                                                                 tls_receiver: TlsReceiver) -> None:
    ch = channel(cert[0])
    try:
        for name in ("a.example", "a.example", "b.example", "b.example", "a.example"):
            result = ch.send(notification(f"https://{name}:{tls_receiver.port}/hook"))
            assert result.ok, result
    finally:
        ch.close()
    got = tls_receiver.requests
    assert [(host, sni) for host, sni, _ in got] == [(f"{n}:{tls_receiver.port}", n) for n in
                                                     ("a.example", "a.example", "b.example", "b.example", "a.example")]
    ports = {host.split(":")[0]: {p for h, _, p in got if h == host} for host, _, _ in got}
    assert len(ports["a.example"]) == 1 and len(ports["b.example"]) == 1  # each name keeps its connection alive
    assert ports["a.example"].isdisjoint(ports["b.example"])


def test_a_certificate_for_another_name_is_refused(cert: tuple[Path, Path], tls_receiver: TlsReceiver) -> None:
    def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]
    policy = TargetPolicy("d", allow="127.0.0.1,c.example", resolver=resolve)
    ch = WebhookChannel(policy, timeout=5.0, tls=ssl.create_default_context(cafile=str(cert[0])))
    try:
        result = ch.send(notification(f"https://c.example:{tls_receiver.port}/hook"))
    finally:
        ch.close()
    assert not result.ok and "certificate" in (result.error or "").lower(), result
    assert tls_receiver.requests == []


def test_https_clients_are_per_host_name_and_the_least_recently_used_is_closed(cert: tuple[Path, Path]) -> None:
    ch = channel(cert[0], https_hosts=2)
    try:
        with ch.client_for("http", "a.example") as plain_a, ch.client_for("http", "b.example") as plain_b:
            assert plain_a is plain_b  # plain HTTP checks no identity: one pool
        with ch.client_for("https", "a.example") as a:
            pass
        with ch.client_for("https", "A.example.") as again:
            assert again is a
        with ch.client_for("https", "b.example") as b:
            assert b is not a
        with ch.client_for("https", "a.example"):  # a is now the most recently used
            pass
        with ch.client_for("https", "b.example") as b_busy:
            with ch.client_for("https", "c.example"), ch.client_for("https", "d.example"):
                assert not b_busy.is_closed  # evicted while in use: closed once the send is done
                assert a.is_closed
            assert not b_busy.is_closed
        assert b_busy.is_closed
    finally:
        ch.close()
