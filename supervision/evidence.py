"""Evidence files: judged by their first bytes, not their name or declared type.

JPEG starts ``FF D8 FF``, PNG with its 8-byte signature, PDF with ``%PDF-``; anything else is
refused (415). Uploads are read in bounded chunks, so an oversized one is refused (413) after
at most ``MAX_BYTES`` plus one chunk, never held whole in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from supervision.errors import EvidenceTooLarge, EvidenceType

MAX_BYTES = 10 * 1024 * 1024
CHUNK = 256 * 1024
SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)


@dataclass(frozen=True, slots=True)
class Evidence:
    name: str
    type: str
    data: bytes
    sha256: str


def sniff(head: bytes) -> str | None:
    """The MIME type of a file starting with ``head``, or None if it is not JPEG, PNG or PDF."""
    for magic, mime in SIGNATURES:
        if head.startswith(magic):
            return mime
    return None


async def read_evidence(name: str, chunks: AsyncIterator[bytes], max_bytes: int = MAX_BYTES) -> Evidence:
    """Collects an upload; raises EvidenceTooLarge (413) or EvidenceType (415)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise EvidenceTooLarge(f"file {name!r}: larger than {max_bytes // (1024 * 1024)} MB")
        parts.append(chunk)
    data = b"".join(parts)
    mime = sniff(data[:16])
    if mime is None:
        raise EvidenceType(f"file {name!r}: not a JPEG, PNG or PDF by its content "
                           f"(starts with {data[:8].hex() or 'nothing'})")
    return Evidence(name=name, type=mime, data=data, sha256=hashlib.sha256(data).hexdigest())
