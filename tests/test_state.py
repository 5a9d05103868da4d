"""The state database on SQLite and PostgreSQL: schema, alert book queries, one live alert per key."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from domain.alerts import Alert, AlertKey, AlertState, EventType
from domain.severity import Severity
from store.state import Entry, StateStore, Tracking
from store.state.db import normalise_url
from store.state.models import Base, TokenRow
from store.state.records import NewOutbox, ms_to_dt

T0 = 1_764_300_000_000
REPO = Path(__file__).resolve().parents[1]


def entry(rule: str = "r", site: str = "S1", device: str = "d1", metric: str = "m", *,
          severity: Severity = Severity.YELLOW, state: AlertState = AlertState.OPEN, at: int = T0,
          family: str = "gas_station", departments: tuple[str, ...] = ("commerce",)) -> Entry:
    a = Alert(id="", rule=rule, kind="threshold", site=site, family=family, device=device, metric=metric,
              severity=severity, state=state, value=1.0, threshold=0.5, message="m",
              started_at=ms_to_dt(at), updated_at=ms_to_dt(at), departments=departments, street="st")
    return Entry(a, Tracking(reached_ms={int(severity): at}))


def add(store: StateStore, e: Entry, event: EventType = EventType.FIRED) -> str:
    with store.transaction() as tx:
        got = tx.insert(e)
        tx.add_event(got.alert.id, event, T0, e.alert.severity, value=1.0, by="engine",
                     departments=e.alert.departments)
        return got.alert.id


def test_migrations_match_the_models(store: StateStore) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrations_are_idempotent_and_data_survives(make_store: Callable[[], StateStore]) -> None:
    first = make_store()
    alert_id = add(first, entry())
    second = make_store()  # a restart: migrations run again on the same database
    got = second.get_alert(alert_id)
    assert got is not None and got.rule == "r" and [e.type for e in got.events] == [EventType.FIRED]


def test_processes_starting_together_migrate_once(state_url: str) -> None:
    """Several `serve` processes starting at once on one fresh database: one migrates, none fails."""
    code = "import sys; from store.state import StateStore; StateStore(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, state_url], cwd=REPO, stderr=subprocess.PIPE)
             for _ in range(3)]
    results = [(p.wait(60), p.stderr.read().decode() if p.stderr else "") for p in procs]
    assert [rc for rc, _ in results] == [0, 0, 0], results
    # And threads of one process (tests, tools) opening stores at once.
    stores: list[StateStore] = []
    threads = [threading.Thread(target=lambda: stores.append(StateStore(state_url))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert len(stores) == 3
        add(stores[0], entry())
        assert len(stores[2].list_alerts()) == 1
    finally:
        for st in stores:
            st.close()


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("sqlite:///./var/state.db", "sqlite:///./var/state.db"),
])
def test_url_mapping(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://h/db", "state.db", "sqlite://", "sqlite:///:memory:"])
def test_unusable_urls_are_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ValueError, match="SAFEWATCH_STATE_URL"):
        StateStore(url)


def test_round_trip_keeps_every_field(store: StateStore) -> None:
    e = entry(severity=Severity.ORANGE, departments=("commerce", "street_x"))
    e = replace(e, track=Tracking(reopen_count=2, reopen_ms=(T0 - 5, T0), reached_ms={1: T0 - 9, 3: T0},
                                  escalations_done=(0,), acknowledged_ms=None))
    with store.transaction() as tx:
        got = tx.insert(e)
    back = store.get_alert(got.alert.id, with_events=False)
    assert back == replace(e.alert, id=got.alert.id)
    [full] = store.entries([AlertState.OPEN])
    assert full.track == e.track


def test_list_alerts_filters_and_pages_newest_first(store: StateStore) -> None:
    ids = [
        add(store, entry("r1", "S1", severity=Severity.BLUE, at=T0)),
        add(store, entry("r1", "S2", severity=Severity.RED, at=T0 + 1000, departments=("fire",))),
        add(store, entry("r2", "S1", severity=Severity.ORANGE, at=T0 + 2000, family="underground")),
        add(store, entry("r2", "S2", severity=Severity.YELLOW, at=T0 + 3000, state=AlertState.RESOLVED)),
    ]
    assert [a.id for a in store.list_alerts()] == ids[::-1]
    cases: list[tuple[dict[str, object], list[int]]] = [
        ({"site": "S1"}, [2, 0]),
        ({"family": "underground"}, [2]),
        ({"severity_at_least": Severity.ORANGE}, [2, 1]),
        ({"state": "resolved"}, [3]),
        ({"state": AlertState.OPEN, "site": "S2"}, [1]),
        ({"department": "fire"}, [1]),
        ({"department": "nobody"}, []),
        ({"since": ms_to_dt(T0 + 1000)}, [3, 2, 1]),
        ({"limit": 2}, [3, 2]),
        ({"limit": 0}, [3]),  # clamped to at least one
        ({"before": ids[2]}, [1, 0]),
        ({"before": ids[2], "limit": 1}, [1]),
        ({"before": ids[0]}, []),
    ]
    for kwargs, expected in cases:
        got = [a.id for a in store.list_alerts(**kwargs)]  # type: ignore[arg-type]
        assert got == [ids[i] for i in expected], kwargs
    assert all(a.events == () for a in store.list_alerts())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"before": "abc"}, "before='abc'"),
    ({"state": "sleeping"}, "sleeping"),
])
def test_list_alerts_refuses_bad_options(store: StateStore, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store.list_alerts(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["x", "", "-1", "1.5", "99999999999999999999", "42"])
def test_get_alert_unknown_or_malformed_is_none(store: StateStore, bad: str) -> None:
    assert store.get_alert(bad) is None


def test_one_live_alert_per_key(store: StateStore) -> None:
    first = add(store, entry())
    with pytest.raises(IntegrityError), store.transaction() as tx:
        tx.insert(entry(at=T0 + 1))
    # Another device, rule or metric is another key.
    add(store, entry(device="d2"))
    with store.transaction() as tx:
        live = tx.live(AlertKey("r", "S1", "d1", "m"))
        assert live is not None and live.alert.id == first
        tx.update(replace(live, alert=replace(live.alert, state=AlertState.CLOSED)))
    second = add(store, entry(at=T0 + 2))  # once closed, the key may fire again
    assert second != first
    assert store.get_alert(first, with_events=False).state is AlertState.CLOSED  # type: ignore[union-attr]


def test_departments_added_by_update_are_queryable(store: StateStore) -> None:
    alert_id = add(store, entry(departments=("commerce",)))
    with store.transaction() as tx:
        e = tx.get(alert_id)
        assert e is not None
        tx.update(replace(e, alert=replace(e.alert, departments=("commerce", "safety_bureau"))))
    assert [a.id for a in store.list_alerts(department="safety_bureau")] == [alert_id]
    assert store.get_alert(alert_id).departments == ("commerce", "safety_bureau")  # type: ignore[union-attr]


def test_events_since_resumes_and_scopes_by_department(store: StateStore) -> None:
    a1 = add(store, entry("r1", departments=("commerce",)))
    a2 = add(store, entry("r2", departments=("fire",)))
    with store.transaction() as tx:
        ev = tx.add_event(a1, EventType.RESOLVED, T0 + 5, Severity.YELLOW, by="engine")
    everything = store.events_since(0)
    assert [(e.alert_id, e.type) for e, _ in everything] == [
        (a1, EventType.FIRED), (a2, EventType.FIRED), (a1, EventType.RESOLVED)]
    assert [e.id for e, _ in everything] == sorted(e.id for e, _ in everything)
    assert store.last_event_id() == ev.id
    after_first = store.events_since(everything[0][0].id)
    assert [e.id for e, _ in after_first] == [e.id for e, _ in everything[1:]]
    commerce = store.events_since(0, department="commerce")
    assert [(e.alert_id, e.type) for e, _ in commerce] == [(a1, EventType.FIRED), (a1, EventType.RESOLVED)]
    _, alert = commerce[0]
    assert [e.type for e in alert.events] == [EventType.FIRED, EventType.RESOLVED]
    assert store.events_since(ev.id) == []
    assert len(store.events_since(0, limit=1)) == 1


def test_firing_open_alerts_for_site_and_counts(store: StateStore) -> None:
    add(store, entry("r1", severity=Severity.RED))
    add(store, entry("r2", state=AlertState.ACKNOWLEDGED))
    add(store, entry("r3", state=AlertState.RESOLVED))
    add(store, entry("r4", state=AlertState.CLOSED))
    add(store, entry("r5", site="S9"))
    assert sorted(store.firing(), key=lambda p: p[0].rule) == [
        (AlertKey("r1", "S1", "d1", "m"), Severity.RED),
        (AlertKey("r2", "S1", "d1", "m"), Severity.YELLOW),
        (AlertKey("r5", "S9", "d1", "m"), Severity.YELLOW),
    ]
    assert [a.rule for a in store.open_alerts_for_site("S1")] == ["r3", "r2", "r1"]
    assert [a.rule for a in store.open_alerts_for_site("S1", include_resolved=False)] == ["r2", "r1"]
    assert store.count_alerts_by_state() == {"open": 2, "acknowledged": 1, "resolved": 1, "closed": 1}


def test_tokens_are_stored_hashed_and_revocable(store: StateStore) -> None:
    token = store.create_token("commerce")
    other = store.create_token("fire")
    assert token != other and len(token) >= 40
    assert store.department_for_token(token) == "commerce"
    assert store.department_for_token(other) == "fire"
    for bad in ("", token + "x", token[:-1], "Bearer " + token):
        assert store.department_for_token(bad) is None
    with store._read() as s:
        hashes = list(s.scalars(select(TokenRow.token_hash)))
    assert token not in hashes and len(hashes) == 2 and all(len(h) == 64 for h in hashes)
    assert store.revoke_token(token) is True
    assert store.revoke_token(token) is False
    assert store.department_for_token(token) is None
    assert store.department_for_token(other) == "fire"
    store.create_token("fire")
    assert store.revoke_department_tokens("fire") == 2
    assert store.department_for_token(other) is None


def test_subscriptions_are_scoped_to_their_department(store: StateStore) -> None:
    s1 = store.create_subscription(department="commerce", channel="webhook", url="http://127.0.0.1:9/h",
                                   secret="k", min_severity=Severity.ORANGE, families=["gas_station"],
                                   sites=["S1"])
    s2 = store.create_subscription(department="fire", channel="mqtt", url="fire/feed")
    assert s1.min_severity is Severity.ORANGE and s1.families == ("gas_station",) and s1.streets == ()
    assert [s.id for s in store.list_subscriptions()] == [s1.id, s2.id]
    assert [s.id for s in store.list_subscriptions("fire")] == [s2.id]
    assert store.get_subscription(s1.id, department="fire") is None
    assert store.get_subscription(s1.id) == s1
    assert store.delete_subscription(s1.id, department="fire") is False
    assert store.delete_subscription("nonsense") is False
    assert store.delete_subscription(s1.id, department="commerce") is True
    assert store.list_subscriptions() == [s2]


@pytest.mark.parametrize(("channel", "url", "message"), [
    ("email", "a@b", "channel='email'"),
    ("webhook", "ftp://x/y", "url='ftp://x/y'"),
    ("webhook", "not a url", "url="),
    ("mqtt", "alerts/#", "url='alerts/#'"),
    ("mqtt", "", "url=''"),
])
def test_bad_subscriptions_are_refused_naming_the_option(store: StateStore, channel: str, url: str,
                                                         message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        store.create_subscription(department="commerce", channel=channel, url=url)
    assert store.list_subscriptions() == []


@pytest.mark.parametrize(("department", "site", "metric", "silenced"), [
    ("commerce", "S1", "vapor_lel", "own, site-wide"),
    ("commerce", "S1", "leak", "own, site-wide"),
    ("fire", "S1", "vapor_lel", "everyone, metric"),
    ("fire", "S1", "leak", None),
    ("fire", "S2", "vapor_lel", None),
    ("street_x", "S3", "leak", None),  # that one has ended
])
def test_silence_matching(store: StateStore, department: str, site: str, metric: str,
                          silenced: str | None) -> None:
    now = datetime.now(UTC)
    store.create_silence(site="S1", until=now + timedelta(hours=1), reason="own, site-wide",
                         department="commerce", created_by="commerce")
    store.create_silence(site="S1", metric="vapor_lel", until=now + timedelta(hours=1),
                         reason="everyone, metric")
    ending = store.create_silence(site="S3", until=now + timedelta(seconds=30), reason="short",
                                  department="street_x")
    in_a_minute = int((now + timedelta(minutes=1)).timestamp() * 1000)
    got = store.silence_for(department, site, metric, at_ms=in_a_minute)
    assert (got.reason if got else None) == silenced
    assert store.silence_for("street_x", "S3", "leak") == ending


def test_silences_list_expire_and_delete(store: StateStore) -> None:
    now = datetime.now(UTC)
    mine = store.create_silence(site="S1", until=now + timedelta(hours=1), department="commerce",
                                created_by="commerce", reason="maintenance")
    wide = store.create_silence(site="S2", until=now + timedelta(minutes=5))
    other = store.create_silence(site="S3", until=now + timedelta(hours=2), department="fire")
    assert mine.until.tzinfo is not None and mine.reason == "maintenance"
    assert [s.id for s in store.list_silences()] == [mine.id, wide.id, other.id]
    assert [s.id for s in store.list_silences("commerce")] == [mine.id, wide.id]
    assert [s.id for s in store.list_silences(active_at=now + timedelta(minutes=30))] == [mine.id, other.id]
    assert store.delete_silence(other.id, department="commerce") is False
    assert store.delete_silence(mine.id, department="commerce") is True
    assert store.delete_silence(mine.id) is False
    with pytest.raises(ValueError, match="until="):
        store.create_silence(site="S1", until=now - timedelta(seconds=1))
    purge_at = int((now + timedelta(hours=3)).timestamp() * 1000)
    assert store.purge_silences(purge_at) == 2


def _row(event_id: int, alert_id: str, target: str) -> NewOutbox:
    return NewOutbox(event_key=str(event_id), subject="alert", subject_id=alert_id, channel="mqtt",
                     target_kind="topic", target=target, department="commerce", site="S1", metric="m",
                     payload=b"{}", event_id=event_id)


def _outbox_rows(store: StateStore, alert_id: str, targets: list[str]) -> None:
    with store.transaction() as tx:
        for t in targets:
            ev = tx.add_event(alert_id, EventType.SEVERITY_CHANGED, T0, Severity.RED)
            tx.enqueue([_row(ev.id, alert_id, t)], due_ms=0)


def test_outbox_heads_are_fifo_per_target_and_claims_are_exclusive(make_store) -> None:
    store = make_store()
    alert_id = add(store, entry())
    _outbox_rows(store, alert_id, ["topic:a", "topic:b", "topic:a", "topic:a"])
    assert store.outbox_depth() == 4
    heads = store.claim_heads(now_ms=1000, lease_ms=60_000)
    assert [h.target for h in heads] == ["topic:a", "topic:b"]
    # Claimed rows are leased: neither this nor another process can claim them again now.
    assert make_store().claim_heads(now_ms=1000, lease_ms=60_000) == []
    a_first = heads[0]
    store.mark_retry(a_first.id, 1, next_attempt_ms=5000, error="HTTP 500")
    # The head of "a" waits for its retry, so the rows behind it wait too.
    assert store.claim_heads(now_ms=2000, lease_ms=60_000) == []
    assert store.next_due_ms() == 5000  # not the waiting rows' own (past) times
    assert store.claim_head("topic:a", now_ms=2000, lease_ms=60_000) is None
    again = store.claim_head("topic:a", now_ms=5000, lease_ms=60_000)
    assert again is not None and again.id == a_first.id and again.attempts == 1
    store.mark_delivered(again.id, 5001, 2)
    nxt = store.claim_head("topic:a", now_ms=5001, lease_ms=60_000)
    assert nxt is not None and nxt.id > a_first.id
    store.mark_final(nxt.id, "failed", 1, "HTTP 404")
    assert store.outbox_depth() == 2  # one of "a" left, and "b" still leased
    assert store.next_due_ms() == 0
    assert [i.status for i in store.outbox_items(target="topic:a")] == ["delivered", "failed", "pending"]
    with pytest.raises(ValueError, match="status='pending'"):
        store.mark_final(nxt.id, "pending", 1, "x")


def test_outbox_dedups_an_event_per_target(store: StateStore) -> None:
    alert_id = add(store, entry())
    [(ev, _)] = store.events_since(0)
    row = _row(ev.id, alert_id, "topic:a")
    with store.transaction() as tx:
        tx.enqueue([row])
    with pytest.raises(IntegrityError), store.transaction() as tx:
        tx.enqueue([row])
    assert len(store.outbox_items(event_id=ev.id)) == 1


def test_concurrent_writers_do_not_fail(store: StateStore) -> None:
    """Book writes from several threads (ingest, scheduler, API) queue instead of 'database is locked'."""
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(15):
                add(store, entry(rule=f"r{n}", device=f"d{i}"))
                store.create_token(f"dep{n}")
                store.list_alerts(limit=5)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(store.list_alerts(limit=1000)) == 60


def test_ping(store: StateStore) -> None:
    ok, detail = store.ping()
    assert ok and detail == store.backend
    with store._read() as s:
        assert s.execute(text("SELECT 1")).scalar() == 1
