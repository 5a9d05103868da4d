"""Safewatch alerting: from validated readings to alert-book transitions and their notices.

- ``engine`` (rules, pure) turns batches into ``Signal``s; ``rules.kernel`` holds what the
  rule kinds share (direction sign, "passed", the schedule gate, forecasts);
- ``lifecycle`` records them in the alert book as transitions and events
  (``route`` says which departments, ``escalation`` climbs unacknowledged alerts), and hands
  each event's ``notify.Notice`` to ``notify`` (outbox rows in the same transaction, the SSE
  broadcaster after the commit);
- ``service.AlertService`` wires one process's share of it.

The names below are what other parts (``api``, ``service``, ``supervision``) may use. They are
loaded on first use, so that importing the pure engine (``alerting.engine``) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alerting.lifecycle import AlertNotFound, Change, TransitionError
    from alerting.rules.kernel import upcoming
    from alerting.rules.trend import Fit, fit_trend
    from alerting.service import AlertService

_EXPORTS = {
    "AlertService": "alerting.service",
    "AlertNotFound": "alerting.lifecycle",
    "Change": "alerting.lifecycle",
    "TransitionError": "alerting.lifecycle",
    "Fit": "alerting.rules.trend",
    "fit_trend": "alerting.rules.trend",
    "upcoming": "alerting.rules.kernel",
}
__all__ = ["AlertNotFound", "AlertService", "Change", "Fit", "TransitionError", "fit_trend", "upcoming"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'alerting' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
