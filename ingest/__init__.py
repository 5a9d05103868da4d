"""Safewatch ingest: MQTT subscription, topic and payload decoding, validation, dead letters."""

from ingest.decode import REASONS, Decoded, Decoder, Rejection
from ingest.pipeline import Ingest

__all__ = ["REASONS", "Decoded", "Decoder", "Ingest", "Rejection"]
