"""One rule engine per held partition, behind the ``Engine`` interface ``AlertService`` uses.

Each partition's engine state (series trackers, deadman memory, latest values) lives in exactly
one process at a time. When a partition is taken over, its engine is built fresh: the alerts the
book says are firing for its sites are restored (so none is raised twice), the deadman learns
the devices InfluxDB last heard (so one that died during the takeover is still reported), and
``restore_windows`` (rule windows from InfluxDB, when set) fills trend windows and timers. When a
partition is lost or released its engine is dropped, so nothing stale survives a later return.

Readings and sweeps of partitions this process does not hold are ignored: their owner judges them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable

from alerting.engine import Engine, LatestValue
from domain.alerts import AlertKey, Signal
from domain.district import District
from domain.readings import Batch, DeviceStatus, Reading
from domain.severity import Severity
from service.partitions import partition_of

log = logging.getLogger(__name__)

RestoreWindows = Callable[[Engine, Collection[str]], None]


class PartitionedEngine(Engine):
    """The base ``Engine`` part is a probe only: ``restore`` uses it to tell which alerts the config
    can no longer place (orphans); readings go to the per-partition engines."""

    def __init__(self, district: District, partitions: int) -> None:
        super().__init__(district)
        self.district = district
        self.n = partitions
        self._part = {site: partition_of(site, partitions) for site in district.sites}
        self._engines: dict[int, Engine] = {}
        self._lock = threading.Lock()

    def partition(self, site: str) -> int:
        k = self._part.get(site)
        return partition_of(site, self.n) if k is None else k

    def sites_of(self, k: int) -> list[str]:
        return [s for s, p in self._part.items() if p == k]

    def hold(self, k: int, engine: Engine) -> None:
        with self._lock:
            self._engines[k] = engine

    def drop(self, k: int) -> None:
        with self._lock:
            self._engines.pop(k, None)

    def held(self) -> set[int]:
        with self._lock:
            return set(self._engines)

    # -- the Engine interface ------------------------------------------------------------------

    def process(self, batch: Batch) -> list[Signal]:
        with self._lock:
            engines = dict(self._engines)
        if not engines:
            return []
        groups: dict[int, tuple[list[Reading], list[DeviceStatus]]] = {}
        part = self._part
        for r in batch.readings:
            k = part.get(r.site)
            if k is not None and k in engines:
                groups.setdefault(k, ([], []))[0].append(r)
        for st in batch.statuses:
            k = part.get(st.site)
            if k is not None and k in engines:
                groups.setdefault(k, ([], []))[1].append(st)
        out: list[Signal] = []
        for k, (readings, statuses) in groups.items():
            out += engines[k].process(Batch(tuple(readings), tuple(statuses)))
        return out

    def sweep(self, now_ms: int) -> list[Signal]:
        with self._lock:
            engines = list(self._engines.values())
        return [sig for e in engines for sig in e.sweep(now_ms)]

    def restore(self, firing: Iterable[tuple[AlertKey, Severity]]) -> list[AlertKey]:
        firing = list(firing)
        with self._lock:
            engines = dict(self._engines)
        for key, severity in firing:
            e = engines.get(self.partition(key.site))
            if e is not None:
                e.restore([(key, severity)])
        return super().restore(firing)

    def orphans(self, k: int, firing: Iterable[tuple[AlertKey, Severity]]) -> list[AlertKey]:
        """The keys of partition ``k`` among ``firing`` that the config can no longer place (rule or
        site gone): asked of the probe, which judges no reading."""
        mine = [(key, sev) for key, sev in firing if self.partition(key.site) == k]
        with self._lock:
            return Engine.restore(self, mine)

    def latest(self, site: str) -> dict[str, LatestValue]:
        e = self._engines.get(self.partition(site))
        return {} if e is None else e.latest(site)

    def know_device(self, site: str, device: str, last_seen_ms: int) -> bool:
        e = self._engines.get(self.partition(site))
        return False if e is None else e.know_device(site, device, last_seen_ms)


def fresh_engine(district: District, sites: Collection[str], firing: Iterable[tuple[AlertKey, Severity]],
                 seen: Iterable[tuple[str, str, int]], restore_windows: RestoreWindows | None = None) -> Engine:
    """A partition's engine at takeover: book alerts, deadman memory, rule windows; nothing fired."""
    mine = set(sites)
    engine = Engine(district)
    engine.restore((key, sev) for key, sev in firing if key.site in mine)
    for site, device, t in seen:
        if site in mine:
            engine.know_device(site, device, t)
    if restore_windows is not None:
        try:
            restore_windows(engine, sorted(mine))
        except Exception:  # a restore that fails costs windows, never the partition
            log.exception("rule windows not restored for %d sites", len(mine))
    return engine
