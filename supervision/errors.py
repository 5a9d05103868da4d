"""What a hazard move can fail with; the API maps each to its status code."""

from __future__ import annotations


class HazardError(Exception):
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class HazardNotFound(HazardError):
    status = 404


class HazardForbidden(HazardError):
    status = 403


class HazardConflict(HazardError):
    """A move the hazard's state does not allow, or closing with alerts still firing."""

    status = 409


class HazardInvalid(HazardError):
    status = 422


class EvidenceTooLarge(HazardError):
    status = 413


class EvidenceType(HazardError):
    status = 415
