"""同一定价，灵活促销: one list price online and offline, read from master data.

The deck: one strict price system, one price online and offline; channels differ by perks (free
shipping, a gift), and a 20 % gap is what throws the offline chain into turmoil — a red line.

- ``unified`` (the default): an online price below the SKU's list price is a *deviation*, which the
  owner approves with a reason; a gap at or beyond ``red_line`` is *refused*.
- ``flexible``: a gap up to ``max_online_discount`` is fine; beyond it a deviation, and the red line
  still refuses.
- A product sold only online (online_only) is *exempt*: there is no offline price to upset.
- A SKU the catalogue does not know has no list price: *refused*.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

POLICIES = ("unified", "flexible")
OK, DEVIATION, REFUSED, EXEMPT = "ok", "deviation", "refused", "exempt"
_CENT = Decimal("0.01")


def to_decimal(value: Decimal | float | int | str) -> Decimal:
    """Convert a number to a finite Decimal, going through str so 0.2 stays 0.2."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


@dataclass(frozen=True)
class PriceRule:
    """The configured rule: policy, red line, and (flexible only) the discount allowed without approval."""

    policy: str = "unified"
    red_line: Decimal = Decimal("0.20")
    max_online_discount: Decimal = Decimal("0.20")

    @classmethod
    def of(cls, config: dict[str, Any]) -> PriceRule:
        """Build the rule from flows.yaml's rules.price_policy."""
        rule = cls(
            policy=config.get("default", "unified"),
            red_line=to_decimal(config.get("red_line", "0.20")),
            max_online_discount=to_decimal(config.get("max_online_discount", "0.20")),
        )
        if rule.policy not in POLICIES:
            raise ValueError(f"unknown price policy {rule.policy!r}; expected one of {', '.join(POLICIES)}")
        if not 0 < rule.red_line < 1:
            raise ValueError(f"red_line must be above 0 and below 1, got {rule.red_line}")
        if not 0 <= rule.max_online_discount < 1:
            raise ValueError(f"max_online_discount must be at least 0 and below 1, got {rule.max_online_discount}")
        return rule


@dataclass(frozen=True)
class PriceVerdict:
    """One SKU's online price judged against its list price."""

    sku: str
    price: Decimal
    list_price: Decimal | None
    gap: Decimal | None  # fraction below the list price; negative when above
    verdict: str  # ok | deviation | refused | exempt
    message: str

    def row(self, *, policy: str) -> dict[str, Any]:
        """Return the verdict as a JSON-ready table row; percentages have two decimals."""
        return {
            "sku": self.sku,
            "price": str(self.price),
            "list_price": None if self.list_price is None else str(self.list_price),
            "gap_pct": None if self.gap is None else str((self.gap * 100).quantize(_CENT)),
            "verdict": self.verdict,
            "policy": policy,
            "message": self.message,
        }


def _percent(fraction: Decimal) -> str:
    return f"{(fraction * 100).quantize(_CENT).normalize():f}%"


def judge_price(
    *, sku: str, price: Decimal | float | str, list_price: Decimal | None, online_only: bool, rule: PriceRule
) -> PriceVerdict:
    """Judge one online price (a campaign price, an event price, a listing price) against the list price."""
    price = to_decimal(price)
    if price <= 0:
        raise ValueError(f"SKU {sku}: an online price must be positive, got {price}")
    if list_price is None:
        return PriceVerdict(sku, price, None, None, REFUSED, f"SKU {sku} is not in the catalogue: it has no list price")
    list_price = to_decimal(list_price)
    gap = (list_price - price) / list_price
    if online_only:
        return PriceVerdict(sku, price, list_price, gap, EXEMPT, f"SKU {sku} is sold only online: outside the rule")
    if gap >= rule.red_line:
        message = (
            f"SKU {sku}: online price {price} is {_percent(gap)} below the list price {list_price}; "
            f"a gap of {_percent(rule.red_line)} or more is the red line and is refused"
        )
        return PriceVerdict(sku, price, list_price, gap, REFUSED, message)
    allowed = rule.max_online_discount if rule.policy == "flexible" else Decimal(0)
    if gap <= allowed:
        return PriceVerdict(sku, price, list_price, gap, OK, f"SKU {sku}: online price {price} keeps to the rule")
    message = (
        f"SKU {sku}: online price {price} is {_percent(gap)} below the list price {list_price}; "
        f"policy {rule.policy} needs the owner's approval with a reason"
    )
    return PriceVerdict(sku, price, list_price, gap, DEVIATION, message)
