"""Migrations 0004 and 0006 on a database with outbox rows from before them: 0004 fills the new
columns from the alerts, moves dedup to (event_key, target) and lets hazard rows go without an
alert event; 0006 gives topic rows their topic column."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from store.state import StateStore
from store.state.db import MIGRATIONS, WRITE, create_state_engine
from store.state.records import NewOutbox

T0 = 1_764_300_000_000


def _migrate_to(url: str, revision: str) -> None:
    engine = create_state_engine(url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.connect().execution_options(**WRITE) as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
    finally:
        engine.dispose()


def test_old_outbox_rows_get_their_subject_site_metric_and_target_kind(state_url: str) -> None:
    _migrate_to(state_url, "0003")
    engine = create_state_engine(state_url)
    with engine.begin() as c:
        # Ids from the database, as the old code had them (PostgreSQL's identity would not skip given ones).
        alert = c.execute(text(
            "INSERT INTO alerts (rule, kind, site, family, device, metric, street, severity, state, message, "
            "started_ms, updated_ms, departments, flapping, reopen_count, reopen_ms, reached_ms, escalations_done) "
            "VALUES ('r', 'threshold', 'GS-1', 'gas_station', 'd', 'vapor_lel', 's', 3, 'open', '', "
            f"{T0}, {T0}, '[]', false, 0, '[]', '{{}}', '[]') RETURNING id")).scalar_one()
        event = c.execute(text("INSERT INTO alert_events (alert_id, type, at_ms, severity, departments) "
                               f"VALUES ({alert}, 'fired', {T0}, 3, '[]') RETURNING id")).scalar_one()
        for sub, target in (("3", "sub:3"), ("NULL", "topic:d/alerts/fire/red")):
            c.execute(text(
                "INSERT INTO outbox (event_id, alert_id, subscription_id, channel, target, department, status, "
                f"attempts, next_attempt_ms, created_ms, payload) VALUES ({event}, {alert}, {sub}, 'webhook', "
                f"'{target}', 'fire', 'pending', 0, {T0}, {T0}, :payload)"), {"payload": b"{}"})
    engine.dispose()
    store = StateStore(state_url)  # migrates to head
    try:
        rows = store.outbox_items()
        old = ("alert", str(alert), str(event), event)
        assert [(r.subject, r.subject_id, r.event_key, r.event_id, r.target_kind, r.site, r.metric)
                for r in rows] == [(*old, "subscription", "GS-1", "vapor_lel"), (*old, "topic", "GS-1", "vapor_lel")]
        with store.transaction() as tx:  # a hazard row: no alert event, its own key
            tx.enqueue([NewOutbox(event_key=f"hazard-{event}", subject="hazard", subject_id="5", channel="webhook",
                                  target_kind="subscription", target="sub:3", department="fire", site="GS-1",
                                  metric=None, payload=b"{}")])
        assert [r.event_key for r in store.outbox_items(target="sub:3")] == [str(event), f"hazard-{event}"]
    finally:
        store.close()


def test_old_topic_rows_get_their_topic_column(state_url: str) -> None:
    """Migration 0006: a topic row's receiver moves from its FIFO key into the ``topic`` column,
    the key stays as it was (it still orders the rows of its topic)."""
    _migrate_to(state_url, "0005")
    engine = create_state_engine(state_url)
    with engine.begin() as c:
        for kind, sub, target in (("subscription", "3", "sub:3"), ("topic", "NULL", "topic:d/alerts/fire/red")):
            c.execute(text(
                "INSERT INTO outbox (subject, subject_id, event_key, subscription_id, channel, target_kind, target, "
                "department, site, status, attempts, next_attempt_ms, created_ms, payload) VALUES ('hazard', '5', "
                f"'hazard-1', {sub}, 'webhook', '{kind}', '{target}', 'fire', 'GS-1', 'pending', 0, {T0}, {T0}, "
                ":payload)"), {"payload": b"{}"})
    engine.dispose()
    store = StateStore(state_url)  # migrates to head
    try:
        rows = store.outbox_items()
        assert [(r.target_kind, r.subscription_id, r.topic, r.target) for r in rows] == [
            ("subscription", "3", None, "sub:3"), ("topic", None, "d/alerts/fire/red", "topic:d/alerts/fire/red")]
    finally:
        store.close()
