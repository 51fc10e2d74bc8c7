"""Check a 5-field cron expression and describe what is wrong with it."""

from __future__ import annotations

import re

__all__ = ["cron_problems"]

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
_CRON_ITEM = re.compile(r"^(?:\*|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:/([0-9]+))?$")


def cron_problems(expr: str) -> list[str]:
    """Return one sentence per invalid field of `expr`; empty when it is valid."""
    parts = expr.split()
    if len(parts) != 5:
        return [f"cron {expr!r} must have 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"]
    return [
        f"cron {expr!r}: {name} field {text!r} is not valid (values {low}-{high})"
        for text, (name, low, high, names) in zip(parts, _CRON_FIELDS, strict=True)
        if not all(_cron_item_ok(item, low, high, names) for item in text.split(","))
    ]


def _cron_item_ok(item: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    match = _CRON_ITEM.match(item)
    if match is None:
        return False
    start, end, step = match.groups()
    values = []
    for token in (start, end):
        if token is None:
            continue
        if token.isdigit():
            value = _to_int(token)
        elif token.lower() in names:
            value = names.index(token.lower()) + low
        else:
            return False
        if not low <= value <= high:
            return False
        values.append(value)
    return (len(values) < 2 or values[0] <= values[1]) and (step is None or _to_int(step) > 0)


def _to_int(digits: str) -> int:
    """Return the value of an ASCII digit run; -1 when int() refuses it for having too many digits."""
    try:
        return int(digits)
    except ValueError:
        return -1
