"""Safewatch alerting."""
