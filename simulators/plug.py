"""A local TCP relay between one simulated device and the broker that can be pulled like a power cord.

A device that loses power sends no DISCONNECT: the broker only sees the connection die and
publishes the device's last will. A clean ``close()`` would suppress the will, so the
``device-silent`` scenario connects its device through this relay and cuts it (both sides
reset), which is exactly what the broker sees when a real device dies. While cut, new
connections are refused, so the device's reconnect attempts fail until ``restore()``.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST instead of FIN


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    with contextlib.suppress(OSError):
        sock.close()


class Plug:
    """Relays 127.0.0.1:``port`` to ``host:port``; ``cut()`` drops every connection at once."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"plug-{self.port}", daemon=True)
        self._thread.start()

    def url(self, scheme: str = "mqtt", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    def cut(self) -> None:
        self._cut.set()

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._cut.is_set() and self._peers:
                    self._drop_all()
                for key, _ in self._sel.select(timeout=0.05):
                    if key.fileobj is self._listener:
                        self._accept()
                    else:
                        assert isinstance(key.fileobj, socket.socket)
                        self._pump(key.fileobj)
        finally:
            self._drop_all()
            self._sel.close()
            self._listener.close()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self._cut.is_set():
            _reset(client)  # no power: the device's reconnect fails
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5.0)
        except OSError:
            _reset(client)  # broker away: the device sees what it would see without the relay
            return
        for s in (client, upstream):
            s.setblocking(True)
            s.settimeout(5.0)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._peers[client], self._peers[upstream] = upstream, client
        self._sel.register(client, selectors.EVENT_READ, None)
        self._sel.register(upstream, selectors.EVENT_READ, None)

    def _pump(self, src: socket.socket) -> None:
        dst = self._peers.get(src)
        if dst is None:
            return
        try:
            data = src.recv(65536)
            if data:
                dst.sendall(data)
                return
        except OSError:
            pass
        self._drop(src)

    def _drop(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for s in (sock, peer):
            if s is None:
                continue
            self._peers.pop(s, None)
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(s)
            _reset(s)

    def _drop_all(self) -> None:
        for s in list(self._peers):
            self._drop(s)
