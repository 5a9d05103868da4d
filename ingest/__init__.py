"""Safewatch ingest."""
