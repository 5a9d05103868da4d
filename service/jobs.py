"""The scheduler of one process, aware of ``SAFEWATCH_ROLES`` and of the other processes.

Every job added to it (by alerting, supervision, retention: they need not know) is one of two kinds:

- per partition: the deadman sweep (``deadman-sweep``) judges only the partitions this process
  holds, so it runs wherever there is ingest, in every such process;
- district-wide (everything else: escalation, silence expiry, housekeeping, retention, overdue
  hazards): it runs only with the ``scheduler`` role, and then under a PostgreSQL advisory lock
  named after the job, taken without waiting, so one process at a time does it and a process that
  finds it taken skips that run (the next interval comes soon). On SQLite it just runs.

The job's name is its id without the ``-<number>`` suffix ``AlertService`` adds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from store.state.store import StateStore

log = logging.getLogger(__name__)
PER_PARTITION = ("deadman-sweep",)
_SUFFIX = re.compile(r"-\d+$")


def job_name(job_id: str | None, func: Callable[..., Any]) -> str:
    return _SUFFIX.sub("", job_id) if job_id else getattr(func, "__name__", "job")


class ClusterScheduler(BackgroundScheduler):  # type: ignore[misc]  # apscheduler is untyped
    def __init__(self, roles: Collection[str], **options: Any) -> None:
        super().__init__(**options)
        self.roles = frozenset(roles)
        self.store: StateStore | None = None  # set once the state store is open (not `state`: apscheduler has one)

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
            state = self.store
            if state is None:
                return func(*a, **kw)
            try:
                _ran, result = state.run_exclusive(name, lambda: func(*a, **kw))
            except SQLAlchemyError as err:
                log.warning("job %s skipped: state database unavailable (%s)", name, type(err).__name__)
                return None
            return result
        exclusive.__name__ = getattr(func, "__name__", name)
        return exclusive
