"""The API's SSE stream over a real HTTP server: ``Server`` runs an ``Api`` under uvicorn in a thread
and reads ``/api/v1/stream`` into a queue of ``Frame``s; ``next_event`` takes the next event off it."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from service.stack import free_port
from tests.support.api import Api


@dataclass
class Frame:
    id: int | None
    data: dict[str, Any] | None
    comment: str | None
    received: float


class Server:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.url = f"http://127.0.0.1:{free_port()}"
        config = uvicorn.Config(api.app, host="127.0.0.1", port=int(self.url.rsplit(":", 1)[1]),
                                log_level="warning", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.readers: list[threading.Thread] = []

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.service.stop()  # closes the broadcaster: every stream ends
        for r in self.readers:
            r.join(timeout=5)
        self.server.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "uvicorn did not stop"

    def listen(self, headers: dict[str, str]) -> queue.Queue[Frame]:
        """Opens the stream in a thread; frames arrive on the queue once the server has subscribed."""
        frames: queue.Queue[Frame] = queue.Queue()
        opened = threading.Event()

        def read() -> None:
            with httpx.Client(base_url=self.url, timeout=httpx.Timeout(10.0, read=30.0)) as c, \
                    c.stream("GET", "/api/v1/stream", headers=headers) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                fields: dict[str, str] = {}
                for line in r.iter_lines():
                    if line.startswith("retry:"):
                        opened.set()
                    elif line.startswith(":"):
                        frames.put(Frame(None, None, line[1:].strip(), time.monotonic()))
                    elif line:
                        key, _, value = line.partition(": ")
                        fields[key] = value
                    elif "data" in fields:
                        frames.put(Frame(int(fields["id"]), json.loads(fields["data"]), None, time.monotonic()))
                        fields = {}

        t = threading.Thread(target=read, daemon=True)
        t.start()
        self.readers.append(t)
        assert opened.wait(10), "the stream did not open"
        return frames


def next_event(frames: queue.Queue[Frame], timeout: float = 5.0) -> Frame:
    deadline = time.monotonic() + timeout
    while True:
        frame = frames.get(timeout=max(0.01, deadline - time.monotonic()))
        if frame.data is not None:
            return frame
