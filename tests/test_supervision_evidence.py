"""Evidence is judged by its bytes and read in bounded chunks (contract section 10: 415 and 413)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from supervision.errors import EvidenceTooLarge, EvidenceType, HazardError
from supervision.evidence import read_evidence, sniff


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.parametrize(("data", "mime", "error"), [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg", None),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", None),
    (b"%PDF-1.7\n%...", "application/pdf", None),
    (b"GIF89a......", None, EvidenceType),           # an image, but not one of the three
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None, EvidenceType),
    (b"just text named photo.jpg", None, EvidenceType),
    (b"", None, EvidenceType),
    (b"\xff\xd8\xff" + b"\x00" * 2000, None, EvidenceTooLarge),  # over the (test) limit of 1000 bytes
])
def test_evidence_by_content(data: bytes, mime: str | None, error: type[HazardError] | None) -> None:
    assert sniff(data[:16]) == (mime if error is not EvidenceTooLarge else "image/jpeg")
    if error is None:
        ev = asyncio.run(read_evidence("x", _chunks(data, 3), max_bytes=1000))
        assert (ev.type, ev.data, len(ev.sha256)) == (mime, data, 64)
    else:
        with pytest.raises(error) as err:
            asyncio.run(read_evidence("photo.jpg", _chunks(data, 100), max_bytes=1000))
        assert err.value.status in (413, 415) and "photo.jpg" in err.value.detail


def test_an_oversized_upload_stops_at_the_limit() -> None:
    seen = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            seen.append(1)
            yield b"\xff" * 100

    with pytest.raises(EvidenceTooLarge):
        asyncio.run(read_evidence("big", endless(), max_bytes=1000))
    assert len(seen) == 11  # one chunk past the limit, never the whole stream
