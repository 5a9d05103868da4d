"""Which sites a department may look at: ``domain.scope`` (the ledger needs it too)."""

from domain.scope import Scope

__all__ = ["Scope"]
