"""七日无理由退货 and the seller's fault: which return or exchange the shop owes, and who pays the return shipping.

A no-reason case (七天无理由) must come within N days of delivery and not be of an excluded
category (custom-made, fresh, opened hygiene goods; digital goods once opened, downloaded or
activated). A seller's fault (质量问题, wrong item, not as described) has no day limit and no
excluded category, and the seller pays the return shipping.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

NO_REASON = "no_reason"


@dataclass(frozen=True)
class ReturnVerdict:
    """Whether a case qualifies, why not, and who pays the return shipping."""

    eligible: bool
    days_since_delivery: int | None
    reasons: tuple[str, ...]
    seller_fault: bool = False
    shipping_paid_by: str = "buyer"

    def as_dict(self) -> dict[str, Any]:
        """Return the verdict as JSON-ready data."""
        return {**asdict(self), "reasons": list(self.reasons)}


def check_return_policy(
    *,
    delivered_on: date | None,
    requested_on: date,
    category: str,
    no_reason_days: int,
    excluded_categories: frozenset[str],
    cause: str = NO_REASON,
    opened: bool = False,
    excluded_when_opened: frozenset[str] = frozenset(),
    seller_fault_causes: frozenset[str] = frozenset(),
) -> ReturnVerdict:
    """Judge a case: a no-reason one against the day limit and the exclusions; a seller's fault qualifies always."""
    days = (requested_on - delivered_on).days if delivered_on is not None else None
    seller_fault = cause in seller_fault_causes
    reasons = []
    if days is not None and days < 0:
        reasons.append(f"delivery date {delivered_on} is after the request date {requested_on.isoformat()}")
    if not seller_fault:
        if cause != NO_REASON:
            reasons.append(f"cause {cause} is neither no-reason nor a seller's fault")
        if days is not None and days > no_reason_days:
            reasons.append(f"requested {days} days after delivery; the limit is {no_reason_days} days")
        if category in excluded_categories:
            reasons.append(f"category {category} is excluded from no-reason returns")
        elif category in excluded_when_opened and opened:
            reasons.append(f"category {category} is excluded from no-reason returns once opened or downloaded")
    return ReturnVerdict(
        eligible=not reasons,
        days_since_delivery=days,
        reasons=tuple(reasons),
        seller_fault=seller_fault,
        shipping_paid_by="seller" if seller_fault else "buyer",
    )
