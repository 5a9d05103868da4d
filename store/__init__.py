"""Safewatch store."""
