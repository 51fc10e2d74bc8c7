"""Parse the short duration text flows.yaml uses: 10m, 8h, 5d."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["DURATION", "parse_duration"]

DURATION = re.compile(r"^([1-9][0-9]*)([mhd])$")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """Parse "10m", "8h" or "5d" into a timedelta."""
    match = DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid duration {text!r}: expected a positive <int>m, <int>h or <int>d, e.g. 10m, 8h, 5d")
    try:
        return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})
    except (OverflowError, ValueError):  # beyond timedelta's range, or too many digits for int()
        raise ValueError(f"invalid duration {text!r}: too long (timedelta holds at most 999999999 days)") from None
