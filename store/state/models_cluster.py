"""SQLAlchemy models of the cluster tables (migration in ``migrations/versions``)."""

from __future__ import annotations

from store.state.models import Base, Pk  # noqa: F401
