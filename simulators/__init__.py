"""Safewatch simulators."""
