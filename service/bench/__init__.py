"""``safewatch bench`` (contract section 8): throughput, loss, alert latency and memory of ``serve``.

In one run, on its own stack in a temporary directory: the broker's ceiling, InfluxDB's
ceiling (``ceilings``), then ``serve`` (``procs``: one process on SQLite, or ``--processes N``
sharing a PostgreSQL the bench starts itself, ``service.pgstack``) under a steady load from
separate publisher processes (``load``) on the synthetic district or ``--config``'s
(``district``), with webhook probes for alert latency (``probe``). Prints one JSON object, last.
"""

from service.bench.district import write_config
from service.bench.measure import count_points
from service.bench.procs import cpu_seconds, rss_mb
from service.bench.run import run_bench

__all__ = ["count_points", "cpu_seconds", "rss_mb", "run_bench", "write_config"]
