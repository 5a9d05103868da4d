"""One deployment per test module: its own district config, serve, webhook receiver and listeners.

A deployment subscribes every department's webhook at ``/hook/{department}`` with the secret
``secret-{department}`` before any test runs, so each test only publishes and watches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.stack import StackInfo
from tests.support.e2e.clients import AlertTopics, Api, Devices
from tests.support.e2e.district import DEPARTMENTS, district_config, new_name, write_config
from tests.support.e2e.serve_process import ADMIN_TOKEN, ServeProcess
from tests.support.e2e.webhooks import WebhookReceiver


def secret_of(department: str) -> str:
    return f"secret-{department}"


@dataclass
class Deployment:
    name: str
    serve: ServeProcess
    api: Api
    devices: Devices
    topics: AlertTopics
    hooks: WebhookReceiver


@pytest.fixture(scope="module")
def deployment(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    name = new_name()
    workdir: Path = tmp_path_factory.mktemp(name)
    config = write_config(workdir / "district.yaml", district_config(name))
    hooks = WebhookReceiver()
    serve = ServeProcess(stack, config, workdir)
    devices: Devices | None = None
    topics: AlertTopics | None = None
    try:
        serve.start()
        api = Api(serve.base_url, ADMIN_TOKEN)
        for dep in DEPARTMENTS:
            api.subscribe(dep, hooks.url(f"/hook/{dep}"), secret_of(dep))
        devices, topics = Devices(stack, name), AlertTopics(stack, name)
        yield Deployment(name, serve, api, devices, topics, hooks)
    finally:
        for part in (devices, topics):
            if part is not None:
                part.close()
        code = serve.stop()
        hooks.close()
        # A drain that fails is a finding of its own, but must not hide the module's results.
        if code not in (0, None):
            print(f"serve exited with {code} after SIGTERM; log:\n{serve.log_tail()}")
