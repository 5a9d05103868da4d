"""The scheduler of one process, aware of ``SAFEWATCH_ROLES`` and of the other processes.

Every job added to it (by alerting, supervision, retention: they need not know) is one of two kinds:

- per partition: the deadman sweep (``deadman-sweep``) judges only the partitions this process
  holds, so it runs wherever there is ingest, in every such process;
- district-wide (everything else: escalation, silence expiry, housekeeping, retention, overdue
  hazards): it runs only with the ``scheduler`` role, and with several processes only while
  ``lease()`` says this process holds the scheduler lease (``service.cluster``: a lease row with
  an epoch, renewed by the heartbeat, so a paused holder loses it after the TTL and another
  process carries on). A run that finds the lease elsewhere is skipped. Without ``lease`` (one
  process, SQLite) it just runs.

The job's name is its id without the ``-<number>`` suffix ``AlertService`` adds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)
PER_PARTITION = ("deadman-sweep",)
_SUFFIX = re.compile(r"-\d+$")


def job_name(job_id: str | None, func: Callable[..., Any]) -> str:
    return _SUFFIX.sub("", job_id) if job_id else getattr(func, "__name__", "job")


class ClusterScheduler(BackgroundScheduler):  # type: ignore[misc]  # apscheduler is untyped
    def __init__(self, roles: Collection[str], **options: Any) -> None:
        super().__init__(**options)
        self.roles = frozenset(roles)
        # Set with several processes: whether this one holds the scheduler lease now.
        self.lease: Callable[[], bool] | None = None

    def add_job(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        name = job_name(kwargs.get("id"), func)
        return super().add_job(self._wrap(name, func), *args, **kwargs)

    def _wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        if name in PER_PARTITION:
            if "ingest" in self.roles:
                return func

            def idle(*a: Any, **kw: Any) -> None:
                return None
            return idle

        def exclusive(*a: Any, **kw: Any) -> Any:
            if "scheduler" not in self.roles:
                return None
            lease = self.lease
            if lease is not None and not lease():
                return None  # another process holds the scheduler lease (or nobody, for now)
            return func(*a, **kw)
        exclusive.__name__ = getattr(func, "__name__", name)
        return exclusive
