"""The state database: alert book, department tokens, subscriptions, silences, outbox.

``StateStore(url)`` is the entry point; records it hands out are in ``store.state.records``.
"""

from store.state.book import BookTx
from store.state.records import Entry, OutboxItem, Silence, Subscription, Tracking
from store.state.store import StateStore

__all__ = ["BookTx", "Entry", "OutboxItem", "Silence", "StateStore", "Subscription", "Tracking"]
