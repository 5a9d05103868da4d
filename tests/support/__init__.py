"""Test support: servers the suite starts itself (PostgreSQL) and the shared state-database fixtures."""
