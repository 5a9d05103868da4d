"""Wiring the supervision side into one process: hazard notices through the process's notify service
(with other processes' hazard events relayed into its SSE stream), listing from AlertService's
post-commit listeners, the sweep and overdue jobs."""

from __future__ import annotations

from apscheduler.schedulers.base import BaseScheduler

from alerting.service import AlertService
from domain.district import District
from notify import NotifyService
from store.state import StateStore
from supervision.notices import HazardNotices
from supervision.relay import HazardRelay
from supervision.service import SupervisionService


def start_supervision(district: District, state: StateStore, alerts: AlertService, notify: NotifyService,
                      scheduler: BaseScheduler) -> SupervisionService:
    """``notify`` is the one ``alerts`` was given (or made): hazard and alert events share its
    outbox worker and SSE stream. MQTT topics are planned when it has an MQTT channel."""
    notices = HazardNotices(district.name, district.tz, notify)
    sup = SupervisionService(district, state, notices, close_alert=alerts.close)
    # Relayed events are other processes' (their rows too): this one's SSE stream only.
    relay = HazardRelay(state, lambda event, hazard: notify.publish([notices.notice(event, hazard)]))
    notices.on_local = relay.local
    relay.start()
    sup.relay = relay
    alerts.listeners.append(sup.on_changes)
    sup.start(scheduler)
    return sup
