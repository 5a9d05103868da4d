"""Safewatch transport."""
