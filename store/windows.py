"""Recent readings of many series at once, thinned to a step: what a restarted engine replays.

``recent_readings`` asks InfluxDB for the last value of each ``step`` of the given metrics,
per (site, device), over ``[start, end)``, in one request per metric. The thinning bounds
the work whatever the ingest rate was: a trend window keeps at most ~128 points anyway, and
a pending ``for`` timer needs the start of its run to within a step, not every reading.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from domain.district import District
from domain.readings import Reading
from store.history import QueryClient, quote_ident


def _site_filter(sites: Collection[str] | None) -> str:
    if sites is None:
        return ""
    # InfluxQL has no bound parameters for regexes: escape the ids (and the delimiter) instead.
    alternatives = "|".join(re.escape(s).replace("/", r"\/") for s in sorted(sites))
    return f' AND "site" =~ /^(?:{alternatives})$/'


def recent_readings(client: QueryClient, district: District, family: str, metrics: Sequence[str],
                    sites: Collection[str] | None, start_ms: int, end_ms: int, step_ms: int) -> list[Reading]:
    """One ``Reading`` per (site, device, metric, step) with data, oldest first per series.

    ``sites`` None means every site of the family; a step's reading is stamped with the
    step's start (InfluxDB's window time), which is never later than the reading it stands for.
    """
    if not metrics or (sites is not None and not sites):
        return []
    step = max(1000, int(step_ms)) // 1000 * 1000
    where = f"time >= {int(start_ms)}ms AND time < {int(end_ms)}ms{_site_filter(sites)}"
    out: list[Reading] = []
    for metric in metrics:  # one query each: the client flattens a multi-statement answer
        q = (f"SELECT last({quote_ident(metric)}) AS \"v\" FROM {quote_ident(family)} WHERE {where} "
             f"GROUP BY time({step}ms), \"site\", \"device\" fill(none)")
        for s in client.query(q):
            tags = s.get("tags") or {}
            site_id, device = str(tags.get("site", "")), str(tags.get("device", ""))
            site = district.sites.get(site_id)
            if site is None or not device:
                continue
            for t, v in s.get("values") or ():
                if v is not None:
                    out.append(Reading(family, site_id, device, site.street, int(t), {metric: float(v)}))
    return out


def last_readings(client: QueryClient, district: District, family: str, metrics: Sequence[str],
                  sites: Collection[str] | None, start_ms: int) -> list[Reading]:
    """The newest reading of each metric per (site, device) since ``start_ms``, each with its own
    time: one request (a statement per metric, so each ``last`` keeps its timestamp; ``last(*)``
    would stamp them all with the query's start)."""
    if not metrics or (sites is not None and not sites):
        return []
    where = f"time >= {int(start_ms)}ms{_site_filter(sites)}"
    q = ";".join(f"SELECT last({quote_ident(m)}) AS {quote_ident(m)} FROM {quote_ident(family)} "
                 f"WHERE {where} GROUP BY \"site\", \"device\"" for m in metrics)
    wanted = set(metrics)
    out: list[Reading] = []
    for s in client.query(q):
        tags = s.get("tags") or {}
        site_id, device = str(tags.get("site", "")), str(tags.get("device", ""))
        site = district.sites.get(site_id)
        columns = list(s.get("columns") or ())
        if site is None or not device or len(columns) < 2 or columns[1] not in wanted:
            continue
        for t, v in s.get("values") or ():
            if isinstance(v, int | float) and not isinstance(v, bool):
                out.append(Reading(family, site_id, device, site.street, int(t), {columns[1]: float(v)}))
    return out
