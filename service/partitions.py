"""Partitions of a district's sites (contract section 12): pure arithmetic, the same in every process.

Site ``id`` is in partition k = crc32(id) mod N. Each partition is one persistent MQTT session,
client id ``safewatch-{district}-p{k}of{N}`` (N = 1 keeps ``safewatch-{district}-ingest``, the
single-process name), subscribed to its own sites' topics only.

Balance: P live processes sorted by id; the first ``N mod P`` of them hold ⌈N/P⌉ partitions, the
others ⌊N/P⌋. Every process computes the same targets from the same process table, so a process
over its share releases, one under it claims, and the counts differ by at most one.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence


def partition_of(site: str, n: int) -> int:
    return zlib.crc32(site.encode()) % n


def split(sites: Iterable[str], n: int) -> dict[int, list[str]]:
    """partition → its sites (every partition present, maybe empty), sites in the given order."""
    out: dict[int, list[str]] = {k: [] for k in range(n)}
    for site in sites:
        out[partition_of(site, n)].append(site)
    return out


def client_id(district: str, k: int, n: int) -> str:
    return f"safewatch-{district}-ingest" if n == 1 else f"safewatch-{district}-p{k}of{n}"


def site_filters(district: str, sites: Iterable[str]) -> list[str]:
    """One telemetry and one status filter per site: the partition's topics and no others."""
    return [f"{district}/+/{site}/+/{kind}" for site in sites for kind in ("telemetry", "status")]


def fair_share(n: int, live: Sequence[str], me: str) -> int:
    """How many of ``n`` partitions ``me`` should hold among the ``live`` process ids.

    ``me`` counts as live even if the table does not show it yet (its first heartbeat).
    """
    ids = sorted(set(live) | {me})
    base, extra = divmod(n, len(ids))
    return base + (1 if ids.index(me) < extra else 0)


def preferred(n: int, live: Sequence[str], me: str) -> list[int]:
    """The order in which ``me`` claims free partitions: its own stride first (k ≡ index mod P),
    so that processes starting together reach for different partitions."""
    ids = sorted(set(live) | {me})
    i, p = ids.index(me), len(ids)
    return sorted(range(n), key=lambda k: ((k - i) % p != 0, k))
