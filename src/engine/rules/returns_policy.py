"""七日无理由退货: a return within N days of delivery, except excluded categories of goods."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class ReturnVerdict:
    """Whether a return qualifies for no-reason return, and why not."""

    eligible: bool
    days_since_delivery: int
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """Return the verdict as JSON-ready data."""
        return {**asdict(self), "reasons": list(self.reasons)}


def check_return_policy(
    *, delivered_on: date, requested_on: date, category: str, no_reason_days: int, excluded_categories: frozenset[str]
) -> ReturnVerdict:
    """Judge a return request against the no-reason return policy."""
    days = (requested_on - delivered_on).days
    reasons = []
    if days < 0:
        reasons.append(f"delivery date {delivered_on.isoformat()} is after the request date {requested_on.isoformat()}")
    elif days > no_reason_days:
        reasons.append(f"requested {days} days after delivery; the limit is {no_reason_days} days")
    if category in excluded_categories:
        reasons.append(f"category {category} is excluded from no-reason returns")
    return ReturnVerdict(eligible=not reasons, days_since_delivery=days, reasons=tuple(reasons))
