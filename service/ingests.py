"""One ingest per held partition: its persistent MQTT session, its subscriptions, its rule engine.

``IngestSet`` implements what ``service.cluster.Cluster`` asks of the runtime (``open``,
``close``, ``abort``). With one partition the session keeps the single-process client id and
the district-wide wildcard filters, and the ingest counts straight into the process registry:
``serve`` behaves exactly as before. With several, each partition subscribes to its own sites'
topics only, and the per-partition ingest counters are summed into the process registry by
``_SummedIngests`` (counters of a partition that left are kept, so they never go backwards).

With leases, a partition's holder also resolves the partition's alerts whose rule or site left
the config (``resolve``: through the book writer, so through the lease fence) once it holds the
lease: resolved at construction they would be written unfenced, by every process starting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from domain.alerts import AlertState, Signal
from domain.clock import now_ms
from domain.district import District
from domain.readings import Batch
from ingest.pipeline import Ingest, Pending, Writer
from service.engines import PartitionedEngine, RestoreWindows, fresh_engine
from service.partitions import client_id, site_filters, split
from store.deadletters import DeadLetters
from store.state.store import StateStore
from transport.mqtt import MqttClient, MqttConnectError, MqttUnreachable

log = logging.getLogger(__name__)
SeenDevices = Callable[[list[str]], list[tuple[str, str, int]]]


@dataclass
class PartitionIngest:
    partition: int
    epoch: int
    sites: list[str]
    client: MqttClient | None  # None for a partition without sites: nothing to subscribe to
    ingest: Ingest | None
    registry: CollectorRegistry | None


class _SummedIngests(Collector):
    def __init__(self, owner: IngestSet) -> None:
        self._owner = owner
        self._retired: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = {}
        self._docs: dict[str, tuple[str, str]] = {}

    def retire(self, registry: CollectorRegistry) -> None:
        for fam, sample_name, labels, value in self._samples([registry]):
            if fam.type == "counter":
                key = (fam.name, sample_name, labels)
                self._retired[key] = self._retired.get(key, 0.0) + value

    @staticmethod
    def _samples(regs: list[CollectorRegistry]) -> Iterator[tuple[Metric, str, tuple[tuple[str, str], ...], float]]:
        for reg in regs:
            for fam in reg.collect():
                for s in fam.samples:
                    if not s.name.endswith("_created"):
                        yield fam, s.name, tuple(sorted(s.labels.items())), s.value

    def collect(self) -> Iterator[Metric]:
        sums = dict(self._retired)
        for fam, sample_name, labels, value in self._samples(self._owner.registries()):
            self._docs[fam.name] = (fam.documentation, fam.type)
            key = (fam.name, sample_name, labels)
            sums[key] = sums.get(key, 0.0) + value
        families: dict[str, Any] = {}
        for (name, _sample, labels), value in sorted(sums.items()):
            doc, kind = self._docs.get(name, ("", "counter"))
            out = families.get(name)
            if out is None:
                keys = [k for k, _ in labels]
                out = families[name] = (CounterMetricFamily(name, doc, labels=keys) if kind == "counter"
                                        else GaugeMetricFamily(name, doc, labels=keys))
            out.add_metric([v for _, v in labels], value)
        yield from families.values()


class IngestSet:
    """The partitions' ingests of this process, opened and closed by the lease manager."""

    def __init__(self, district: District, state: StateStore, n: int, mqtt_url: str, writer: Writer,
                 on_batch: Callable[[Batch], Pending | None], dead_letters: DeadLetters,
                 registry: CollectorRegistry, *, engine: PartitionedEngine | None,
                 seen: SeenDevices | None = None, restore_windows: RestoreWindows | None = None,
                 may_reconnect: Callable[[int, int], bool] | None = None, mqtt_timeout: float = 10.0,
                 resolve: Callable[[Sequence[Signal]], object] | None = None) -> None:
        self.district, self.state, self.n = district, state, n
        self.mqtt_url = mqtt_url
        self.writer, self.on_batch, self.dead_letters = writer, on_batch, dead_letters
        self.registry = registry
        self.engine = engine
        self.seen = seen
        self.restore_windows = restore_windows
        self.may_reconnect = may_reconnect
        self.mqtt_timeout = mqtt_timeout
        self.resolve = resolve
        self.sites = split(district.sites, n)
        self._open: dict[int, PartitionIngest] = {}
        self._lock = threading.Lock()
        self._summed: _SummedIngests | None = None
        if n > 1:
            self._summed = _SummedIngests(self)
            registry.register(self._summed)

    def registries(self) -> list[CollectorRegistry]:
        with self._lock:
            return [p.registry for p in self._open.values() if p.registry is not None]

    def held(self) -> dict[int, PartitionIngest]:
        with self._lock:
            return dict(self._open)

    def open(self, partition: int, epoch: int) -> None:
        sites = self.sites[partition]
        if self.engine is not None:
            entries = self.state.entries([AlertState.OPEN, AlertState.ACKNOWLEDGED])
            firing = [(e.alert.key, e.alert.severity) for e in entries]
            seen = self.seen(sites) if self.seen is not None and sites else []
            self.engine.hold(partition, fresh_engine(self.district, sites, firing, seen, self.restore_windows))
            orphans = set(self.engine.orphans(partition, firing))
            if orphans and self.resolve is not None:
                log.warning("partition %d: resolving %d alerts whose rule or site is gone", partition, len(orphans))
                self.resolve([Signal.clear(e.alert.key, family=e.alert.family, kind=e.alert.kind, at_ms=now_ms(),
                                           value=e.alert.value, message="rule or site no longer in the config")
                              for e in entries if e.alert.key in orphans])
        if not sites:
            with self._lock:
                self._open[partition] = PartitionIngest(partition, epoch, sites, None, None, None)
            log.info("partition %d of %d: no sites, nothing to subscribe to", partition, self.n)
            return
        check = self.may_reconnect
        client = MqttClient(self.mqtt_url, client_id(self.district.name, partition, self.n), clean_session=False,
                            manual_ack=True,
                            reconnect_check=None if check is None else (lambda: check(partition, epoch)))
        registry = None if self._summed is None else CollectorRegistry()
        ingest = Ingest(self.district, client, self.writer, self.on_batch, self.dead_letters,
                        self.registry if registry is None else registry)
        if self.n > 1:
            ingest.filters = site_filters(self.district.name, sites)
        with self._lock:
            self._open[partition] = PartitionIngest(partition, epoch, sites, client, ingest, registry)
        ingest.start()
        try:
            client.connect(self.mqtt_timeout)
        except MqttUnreachable as exc:
            log.warning("%s; retrying in the background", exc)
            client.connect_in_background()
        except MqttConnectError:
            log.exception("partition %d: MQTT refused the session; it stays down", partition)
        log.info("partition %d of %d: %d sites, session %s", partition, self.n, len(sites), client.client_id)

    def close(self, partition: int, drain: bool, timeout: float = 30.0) -> None:
        with self._lock:
            p = self._open.pop(partition, None)
        if p is None:
            return
        if not drain:
            # Lost: nothing more may be acknowledged on this session, nor judged by this process.
            if self.engine is not None:
                self.engine.drop(partition)
            if p.client is not None:
                p.client.abort()
        if p.ingest is not None:
            p.ingest.stop(timeout if drain else 5.0)
        if p.client is not None:
            p.client.close()  # after the drain: the acks queued above go out first
        if self.engine is not None:
            self.engine.drop(partition)
        if self._summed is not None and p.registry is not None:
            self._summed.retire(p.registry)
        log.info("partition %d: stopped (%s)", partition, "drained" if drain else "lost")

    def abort(self, partition: int) -> None:
        p = self._open.get(partition)
        if self.engine is not None:
            self.engine.drop(partition)
        if p is not None and p.client is not None:
            p.client.abort()

    def close_all(self, timeout: float = 30.0) -> None:
        for k in list(self.held()):
            self.close(k, True, timeout)

    # -- for /health and /metrics -----------------------------------------------------------------

    def connected(self) -> bool:
        return all(p.client.is_connected for p in self.held().values() if p.client is not None)

    def health(self) -> dict[str, Any]:
        held = self.held()
        clients = [c for k in sorted(held) if (c := held[k].client) is not None]
        ingests = [p.ingest for p in held.values() if p.ingest is not None]
        out: dict[str, Any] = {
            "ok": all(c.is_connected for c in clients), "url": clients[0].url_for_logs if clients else self.mqtt_url,
            "client_id": clients[0].client_id if len(clients) == 1 and self.n == 1 else [c.client_id for c in clients],
            "queue_depth": sum(len(i.buffer) for i in ingests), "unacked": sum(i.unacked for i in ingests),
            "partitions": sorted(held),
        }
        # The contract's every component says {"ok", "detail"}.
        if not held:
            out["detail"] = "holds no partition (standby)"
        elif out["ok"]:
            out["detail"] = f"connected to {out['url']} for partitions {sorted(held)}"
        else:
            down = [k for k in sorted(held) if (c := held[k].client) is None or not c.is_connected]
            out["detail"] = f"not connected to {out['url']} for partitions {down}"
        return out
