"""Alembic environment: run by ``store.state.db.upgrade`` with an open connection.

There is no alembic.ini: the caller passes the connection in ``config.attributes`` so that
migrations run inside the process at start, on whatever database SAFEWATCH_STATE_URL names.
"""

from __future__ import annotations

from alembic import context

from store.state.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("store.state migrations run through store.state.db.upgrade(engine), "
                       "not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
