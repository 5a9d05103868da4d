"""Connecting to the state database and bringing its schema up to date.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE``: a deferred transaction that reads first and writes later can fail
with "database is locked" without waiting, because SQLite cannot upgrade a stale read
snapshot; taking the write lock up front makes writers queue on the busy timeout instead.
PostgreSQL URLs are mapped to the psycopg 3 driver, with time limits on the network: a state
database host that stops answering (a cable pulled, a firewall dropping packets) otherwise holds
the book writer's thread for as long as TCP retransmits (15 minutes on Linux) while the journal,
which exists for exactly this, waits. ``connect_timeout`` bounds a new connection, TCP keepalives
notice a silent peer while we wait for an answer, and ``tcp_user_timeout`` a peer that stopped
acknowledging what we sent. Each raises OperationalError, which the book writer takes for an
outage (it journals). No ``statement_timeout``: a report's long query is legitimate, and a
blackholed host is the network's problem, not the query's. A value in the URL's query string
(``?connect_timeout=10``) wins over these.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 10_000
PG_CONNECT_ARGS: dict[str, int] = {
    "connect_timeout": 3,  # s: TCP and the server's startup answer
    "keepalives": 1,
    "keepalives_idle": 5,  # s of silence before the first probe
    "keepalives_interval": 2,
    "keepalives_count": 3,  # unanswered probes: a dead peer is noticed after ~11 s
    "tcp_user_timeout": 10_000,  # ms sent data may stay unacknowledged
}
WRITE = {"sqlite_begin": "IMMEDIATE"}
MIGRATION_LOCK = 0x5AFE_3A7C  # pg advisory lock key: "safewatch state migrations"
# Alembic keeps the running migration context in module globals: one migration at a time
# per process (several StateStores may be opened at once, e.g. by tests).
_MIGRATING = threading.Lock()


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` → psycopg 3; ``sqlite:///path`` as is.

    Raises ValueError naming SAFEWATCH_STATE_URL and the value for anything else.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"SAFEWATCH_STATE_URL={url!r}: expected sqlite:///PATH or postgresql://...")
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return f"sqlite://{rest}"
    raise ValueError(f"SAFEWATCH_STATE_URL={url!r}: unsupported scheme {scheme!r} (sqlite or postgresql)")


class SqliteFile:
    """A SQLite database file as it was when opened: an open connection keeps working on a file
    that was deleted (or replaced) meanwhile, so only comparing the path with it notices."""

    def __init__(self, path: Path) -> None:
        self.path = path
        st = path.stat()
        self._id = (st.st_dev, st.st_ino)

    @classmethod
    def of(cls, engine: Engine) -> SqliteFile | None:
        db = engine.url.database
        if engine.dialect.name != "sqlite" or not db or db == ":memory:":
            return None
        return cls(Path(db))

    def changed(self) -> str | None:
        """Why the file is no longer the one opened, or None."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return f"database file {self.path} is gone"
        except OSError as err:
            return f"database file {self.path}: {err.strerror or err}"
        if (st.st_dev, st.st_ino) != self._id:
            return f"database file {self.path} was replaced by another file"
        return None


def create_state_engine(url: str) -> Engine:
    """An Engine for ``url`` with the per-backend settings above; creates a SQLite file's folder."""
    sa_url = make_url(normalise_url(url))
    if sa_url.get_backend_name() == "sqlite":
        db = sa_url.database
        if not db or db == ":memory:":
            # Every pooled connection would get its own empty in-memory database.
            raise ValueError(f"SAFEWATCH_STATE_URL={url!r}: an in-memory SQLite database cannot be shared; "
                             "give a file path (sqlite:///./var/state.db)")
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, connect_args={"check_same_thread": False,
                                                     "timeout": BUSY_TIMEOUT_MS / 1000})
        _sqlite_setup(engine)
        return engine
    connect_args = {k: v for k, v in PG_CONNECT_ARGS.items() if k not in sa_url.query}
    return create_engine(sa_url, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args=connect_args)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def upgrade(engine: Engine) -> None:
    """Run the Alembic migrations to head on ``engine`` (idempotent; safe at every start)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATING, engine.connect().execution_options(**WRITE) as conn:
        if conn.dialect.name == "postgresql":
            # Several processes may start at once on one database: one migrates, the others
            # wait and then find nothing to do. (SQLite serialises on BEGIN IMMEDIATE.)
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()
