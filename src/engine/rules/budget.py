"""Budget thresholds: who approves a spend."""

from __future__ import annotations

from decimal import Decimal

from ecomflow.engine.rules.price_policy import to_decimal


def approver_role(amount: Decimal | float | int, *, owner_above: Decimal | float | int) -> str:
    """Return the role that approves a spend of this amount."""
    # Strictly above: a spend of exactly the threshold stays with operations.
    return "owner" if to_decimal(amount) > to_decimal(owner_above) else "operations"
