"""Wiring the supervision side into one process: hazard notices through the alerts' delivery and
SSE broadcaster (with other processes' hazard events relayed into it), listing from AlertService's
post-commit listeners, the sweep and overdue jobs."""

from __future__ import annotations

from apscheduler.schedulers.base import BaseScheduler

from alerting.service import AlertService
from domain.district import District
from store.state import StateStore
from supervision.notices import HazardNotices
from supervision.relay import HazardRelay
from supervision.service import SupervisionService


def start_supervision(district: District, state: StateStore, alerts: AlertService, scheduler: BaseScheduler,
                      mqtt_topics: bool = True) -> SupervisionService:
    notices = HazardNotices(district.name, district.tz, mqtt_topics, alerts.broadcaster.publish,
                            alerts.delivery.kick)
    sup = SupervisionService(district, state, notices, close_alert=alerts.close)
    relay = HazardRelay(state, lambda event, hazard: alerts.broadcaster.publish(notices.notice(event, hazard)))
    notices.on_local = relay.local
    relay.start()
    sup.relay = relay
    alerts.listeners.append(sup.on_changes)
    sup.start(scheduler)
    return sup
