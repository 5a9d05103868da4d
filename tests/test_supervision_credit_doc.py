"""The worked credit example of docs/credit.md, on the demo district's own config."""

from __future__ import annotations

from pathlib import Path

from alerting.service import AlertService
from domain.alerts import AlertKey, Signal
from domain.clock import now_ms
from domain.district import load_district
from domain.hazards import HazardLevel, Plan
from domain.principal import Principal, Role, Via
from domain.severity import Severity
from store.state import StateStore
from store.state.records import dt_to_ms
from supervision.credit import credit_scores
from supervision.service import SupervisionService

DAY, HOUR = 86_400_000, 3_600_000
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "xicheng.yaml"
ADMIN = Principal(Via.ADMIN_TOKEN, Role.ADMIN)
COMMERCE = Principal(Via.TOKEN, Role.OPERATOR, department="commerce")
STATION = Principal(Via.SESSION, Role.SITE, username="gs001", sites=frozenset({"GS-001"}))


def test_docs_credit_example(store: StateStore) -> None:
    d = load_district(CONFIG)
    alerts = AlertService(d, store)
    sup = SupervisionService(d, store, close_alert=alerts.close)
    alerts.listeners.append(sup.on_changes)
    try:
        t0 = now_ms() - 20 * DAY

        def signal(device: str, sev: Severity | None, at: int) -> None:
            key = AlertKey("vapor-level", "GS-001", device, "vapor_lel")
            alerts.apply_signals([Signal.fire(key, family="gas_station", kind="threshold", at_ms=at, severity=sev,
                                                value=30.0) if sev is not None else
                                    Signal.clear(key, family="gas_station", kind="threshold", at_ms=at, value=30.0)])

        signal("d1", Severity.ORANGE, t0)
        signal("d2", Severity.ORANGE, t0 + 1000)
        signal("d3", Severity.RED, t0 + 2000)
        (vapor,) = store.list_hazards()
        assert vapor.level is HazardLevel.MAJOR and len(vapor.alert_ids) == 3
        lane = sup.ledger.file(STATION, "GS-001", "消防通道堵塞", at_ms=t0 + 3000).hazard
        sup.ledger.plan(STATION, lane.id, Plan("清理", "站长", "0元", lane.deadline, "疏散"), at_ms=t0 + 4000)
        sup.ledger.submit(STATION, lane.id, at_ms=t0 + 5000)
        sup.ledger.verify(COMMERCE, lane.id, True, "已清理", at_ms=t0 + 6000)
        for device in ("d1", "d2", "d3"):
            signal(device, None, t0 + 7000)
        sup.ledger.plan(STATION, vapor.id, Plan("更换油气回收", "站长", "8万元", vapor.deadline, "停业"),
                        at_ms=t0 + 8000)
        sup.ledger.submit(STATION, vapor.id, at_ms=t0 + 9000)
        sup.ledger.verify(COMMERCE, vapor.id, False, "证据不足", at_ms=t0 + 10_000)
        sup.ledger.submit(STATION, vapor.id, at_ms=t0 + 11_000)
        sup.ledger.verify(COMMERCE, vapor.id, True, "复核通过", at_ms=dt_to_ms(vapor.deadline) + 4 * DAY + 2 * HOUR)
        (gs,) = credit_scores(d, store, ["GS-001"])
        points = {f.name: f.points for f in gs.factors}
        assert points == {"alerts_red": -5, "alerts_orange": -6, "alerts_yellow": 0, "alerts_blue": 0,
                          "hazards_major": -15, "hazards_general": -5, "overdue_days": -10,
                          "rejected_reviews": -5}
        assert (gs.score, gs.grade, gs.window) == (54.0, "D", "365d")
    finally:
        alerts.stop()
