"""Inflating a gzip request body with a hard cap: a gzip bomb stops at the cap, early."""

from __future__ import annotations

import zlib

from .errors import InvalidInput, TooLarge


def gunzip_bounded(body: bytes, limit: int, what: str) -> bytes:
    """``body`` inflated; TooLarge beyond ``limit`` bytes, InvalidInput for broken gzip.
    ``what`` names the body in the messages ("report", "log upload")."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise InvalidInput(f"{what} is not valid gzip") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"{what} is larger than {limit} bytes once decompressed")
    if not inflater.eof or inflater.unused_data:
        raise InvalidInput(f"{what} is not one complete gzip stream")
    return data
