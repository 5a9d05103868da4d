"""Acceptance tests that drive ``safewatch serve`` only through the contract's outside interfaces."""
