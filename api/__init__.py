"""Safewatch api."""
