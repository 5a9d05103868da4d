"""SQLAlchemy models of the people tables (migration in ``migrations/versions``)."""

from __future__ import annotations

from store.state.models import Base, Pk  # noqa: F401
