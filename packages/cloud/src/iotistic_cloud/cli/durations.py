"""``--expires-in`` values: ``3600``, ``3600s``, ``30m``, ``1h``, ``7d``."""

from __future__ import annotations

import re
from typing import Final

_DURATION_RE: Final = re.compile(r"([0-9]{1,12})\s*([smhd]?)")
_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    match = _DURATION_RE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use seconds or a number with s, m, h or d")
    seconds = int(match.group(1)) * _SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be more than 0 seconds")
    return seconds
