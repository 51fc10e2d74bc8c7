"""目标分解: split a quarter's revenue target over its months and attribute it to departments."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ecomflow.engine.rules.price_policy import to_decimal

_CENT = Decimal("0.01")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")


def decompose_targets(
    *,
    revenue_target: Decimal | float | int | str,
    quarter: str,
    month_weights: Sequence[float],
    department_weights: Mapping[str, float],
) -> dict[str, list[dict[str, str]]]:
    """Split the revenue target into monthly and per-department targets that sum to it exactly.

    Amounts are strings rounded to 0.01 (half up); the rounding remainder goes to the last item.
    A target with fractions of a cent is first rounded to the cent.
    """
    target = to_decimal(revenue_target)
    if target < 0:
        raise ValueError(f"revenue target must not be negative, got {target}")
    target = target.quantize(_CENT, rounding=ROUND_HALF_UP)
    months = _quarter_months(quarter)
    if len(month_weights) != len(months):
        raise ValueError(f"month weights need {len(months)} entries, one per month, got {len(month_weights)}")
    _check_weights("month weights", list(month_weights))
    _check_weights("department weights", list(department_weights.values()))
    month_amounts = _split(target, month_weights)
    department_amounts = _split(target, list(department_weights.values()))
    return {
        "months": [{"month": m, "revenue": str(a)} for m, a in zip(months, month_amounts, strict=True)],
        "departments": [
            {"department": name, "weight": _weight_text(weight), "revenue": str(amount)}
            for (name, weight), amount in zip(department_weights.items(), department_amounts, strict=True)
        ],
    }


def _quarter_months(quarter: str) -> list[str]:
    match = _QUARTER.fullmatch(quarter.strip()) if isinstance(quarter, str) else None
    if match is None:
        raise ValueError(f"malformed quarter {quarter!r}; expected YYYY-Qn with n from 1 to 4")
    year, number = match.group(1), int(match.group(2))
    return [f"{year}-{month:02d}" for month in range(3 * number - 2, 3 * number + 1)]


def _check_weights(name: str, weights: list[Any]) -> None:
    if not weights:
        raise ValueError(f"{name} must not be empty")
    if any(not isinstance(w, (int, float, Decimal)) or not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"{name} must be non-negative numbers, got {weights}")
    total = sum(to_decimal(w) for w in weights)
    # Tolerance 1e-6 so weights like thirds written as floats still pass.
    if abs(total - 1) > Decimal("1e-6"):
        raise ValueError(f"{name} must sum to 1, got {total}")


def _split(target: Decimal, weights: Sequence[Any]) -> list[Decimal]:
    amounts = [(target * to_decimal(w)).quantize(_CENT, rounding=ROUND_HALF_UP) for w in weights[:-1]]
    # The last item takes the rounding remainder so the list sums exactly to the target.
    return [*amounts, target - sum(amounts, Decimal(0))]


def _weight_text(weight: Any) -> str:
    value = to_decimal(weight)
    # Two decimals as in "0.30", unless the weight is finer than that.
    return f"{value:f}" if value != value.quantize(_CENT) else f"{value.quantize(_CENT):f}"
