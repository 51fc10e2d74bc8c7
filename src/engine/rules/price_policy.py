"""同一定价，灵活促销: how far an online price may sit below the store (offline) price."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

POLICIES = ("unified", "flexible")
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
class PriceLine:
    """One SKU's online and offline (store) price."""

    sku: str
    online_price: Decimal
    offline_price: Decimal

    def __post_init__(self) -> None:
        # Accept int/float/str from forms and YAML, but always hold Decimals.
        object.__setattr__(self, "online_price", to_decimal(self.online_price))
        object.__setattr__(self, "offline_price", to_decimal(self.offline_price))


@dataclass(frozen=True)
class PriceViolation:
    """An online price further below offline than the policy allows."""

    sku: str
    online_price: Decimal
    offline_price: Decimal
    discount: Decimal
    allowed: Decimal
    message: str


def check_prices(
    lines: Sequence[PriceLine], *, policy: str, max_online_discount: Decimal | float | str
) -> list[PriceViolation]:
    """Return the price lines that break the channel price policy, in input order."""
    violations = []
    for line, discount, allowed in _assess(lines, policy=policy, max_online_discount=max_online_discount):
        if discount > allowed:
            violations.append(
                PriceViolation(
                    sku=line.sku,
                    online_price=line.online_price,
                    offline_price=line.offline_price,
                    discount=discount,
                    allowed=allowed,
                    message=_message(line, discount, allowed, policy),
                )
            )
    return violations


def price_table(
    lines: Sequence[PriceLine], *, policy: str, max_online_discount: Decimal | float | str
) -> list[dict[str, Any]]:
    """Return one JSON-ready row per SKU for a table artifact; percentages have two decimals."""
    return [
        {
            "sku": line.sku,
            "online": str(line.online_price),
            "offline": str(line.offline_price),
            "discount_pct": str((discount * 100).quantize(_CENT)),
            "allowed_pct": str((allowed * 100).quantize(_CENT)),
            "ok": discount <= allowed,
        }
        for line, discount, allowed in _assess(lines, policy=policy, max_online_discount=max_online_discount)
    ]


def _assess(
    lines: Sequence[PriceLine], *, policy: str, max_online_discount: Decimal | float | str
) -> list[tuple[PriceLine, Decimal, Decimal]]:
    if policy not in POLICIES:
        raise ValueError(f"unknown price policy {policy!r}; expected one of {', '.join(POLICIES)}")
    maximum = to_decimal(max_online_discount)
    if not 0 <= maximum < 1:
        raise ValueError(f"max_online_discount must be at least 0 and below 1, got {maximum}")
    allowed = maximum if policy == "flexible" else Decimal(0)
    assessed = []
    for raw in lines:
        line = raw if isinstance(raw, PriceLine) else PriceLine(**raw)
        if line.offline_price <= 0:
            raise ValueError(f"SKU {line.sku}: offline price must be positive, got {line.offline_price}")
        if line.online_price < 0:
            raise ValueError(f"SKU {line.sku}: online price must not be negative, got {line.online_price}")
        # Negative when the online price is above offline, which every policy allows.
        discount = (line.offline_price - line.online_price) / line.offline_price
        assessed.append((line, discount, allowed))
    return assessed


def _percent(fraction: Decimal) -> str:
    return f"{(fraction * 100).quantize(_CENT).normalize():f}%"


def _message(line: PriceLine, discount: Decimal, allowed: Decimal, policy: str) -> str:
    limit = "no online price below offline" if allowed == 0 else f"at most {_percent(allowed)} below offline"
    return (
        f"SKU {line.sku}: online price {line.online_price} is {_percent(discount)} below "
        f"offline price {line.offline_price}; policy {policy} allows {limit}"
    )
