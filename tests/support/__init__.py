"""Test support: servers the suite starts itself (PostgreSQL), the shared state-database fixtures, and
the helpers, districts and clients that several test modules share. Test modules import from here
(or get fixtures from a conftest.py), never from one another (tests/test_layout.py)."""
