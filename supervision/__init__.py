"""Hazard supervision (contract section 10): listing from alerts, the rectification lifecycle,
the overdue chain, reports by street and sector, and the safety credit of each site.

``SupervisionService`` (``supervision.service``) is what ``service`` wires into a process. The
names below are what other parts (``api``) may use; the modules behind them are internals. They
are loaded on first use, like ``alerting``'s, so that importing one (the API's schemas, say) does
not load openpyxl for the reports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervision.access import sees
    from supervision.credit import CreditScore, credit_scores
    from supervision.errors import HazardError
    from supervision.evidence import CHUNK as EVIDENCE_CHUNK
    from supervision.evidence import MAX_BYTES as EVIDENCE_MAX_BYTES
    from supervision.evidence import read_evidence
    from supervision.json import attachment_json, hazard_json
    from supervision.ledger import Ledger, Move
    from supervision.reports import ReportRow, hazard_report, to_csv, to_xlsx
    from supervision.service import SupervisionService

# public name → (module, its name there)
_EXPORTS = {
    "SupervisionService": ("supervision.service", "SupervisionService"),
    "Ledger": ("supervision.ledger", "Ledger"),
    "Move": ("supervision.ledger", "Move"),
    "HazardError": ("supervision.errors", "HazardError"),
    "sees": ("supervision.access", "sees"),
    "read_evidence": ("supervision.evidence", "read_evidence"),
    "EVIDENCE_CHUNK": ("supervision.evidence", "CHUNK"),  # bytes read from an upload at a time
    "EVIDENCE_MAX_BYTES": ("supervision.evidence", "MAX_BYTES"),  # the largest attachment (10 MiB)
    "hazard_json": ("supervision.json", "hazard_json"),
    "attachment_json": ("supervision.json", "attachment_json"),
    "ReportRow": ("supervision.reports", "ReportRow"),
    "hazard_report": ("supervision.reports", "hazard_report"),
    "to_csv": ("supervision.reports", "to_csv"),
    "to_xlsx": ("supervision.reports", "to_xlsx"),
    "CreditScore": ("supervision.credit", "CreditScore"),
    "credit_scores": ("supervision.credit", "credit_scores"),
}
__all__ = ["EVIDENCE_CHUNK", "EVIDENCE_MAX_BYTES", "CreditScore", "HazardError", "Ledger", "Move", "ReportRow",
           "SupervisionService", "attachment_json", "credit_scores", "hazard_json", "hazard_report",
           "read_evidence", "sees", "to_csv", "to_xlsx"]


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'supervision' has no attribute {name!r}")
    module, attr = target
    return getattr(importlib.import_module(module), attr)
