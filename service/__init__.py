"""Safewatch service."""
