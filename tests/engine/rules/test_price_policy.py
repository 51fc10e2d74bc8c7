"""同一定价，灵活促销: unified forbids online below offline; flexible allows up to 20%."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ecomflow.engine.rules.price_policy import PriceLine, PriceViolation, check_prices, price_table, to_decimal

MAX = Decimal("0.20")


class TestToDecimal:
    def test_float_goes_through_its_short_text(self) -> None:
        assert to_decimal(0.2) == Decimal("0.2")
        assert to_decimal("79.90") == Decimal("79.90")
        assert to_decimal(5) == Decimal(5)

    @pytest.mark.parametrize("value", ["abc", float("nan"), float("inf")])
    def test_non_numbers_are_refused(self, value: object) -> None:
        with pytest.raises(ValueError, match=r"not a (finite )?number"):
            to_decimal(value)  # type: ignore[arg-type]


class TestPriceLine:
    def test_prices_are_held_as_decimals(self) -> None:
        line = PriceLine(sku="A", online_price=79.9, offline_price="99")  # type: ignore[arg-type]
        assert line == PriceLine(sku="A", online_price=Decimal("79.9"), offline_price=Decimal("99"))


class TestCheckPrices:
    def test_flexible_allows_exactly_twenty_percent(self) -> None:
        lines = [PriceLine("A", Decimal("80"), Decimal("100"))]
        assert check_prices(lines, policy="flexible", max_online_discount=MAX) == []

    def test_flexible_refuses_twenty_five_percent(self) -> None:
        lines = [PriceLine("A", Decimal("75"), Decimal("100"))]
        assert check_prices(lines, policy="flexible", max_online_discount=MAX) == [
            PriceViolation(
                sku="A",
                online_price=Decimal("75"),
                offline_price=Decimal("100"),
                discount=Decimal("0.25"),
                allowed=MAX,
                message=(
                    "SKU A: online price 75 is 25% below offline price 100; "
                    "policy flexible allows at most 20% below offline"
                ),
            )
        ]

    def test_unified_refuses_any_online_price_below_offline(self) -> None:
        violations = check_prices([PriceLine("B", "99.00", "100.00")], policy="unified", max_online_discount=MAX)
        assert [(v.sku, v.discount, v.allowed) for v in violations] == [("B", Decimal("0.01"), Decimal(0))]
        assert violations[0].message == (
            "SKU B: online price 99.00 is 1% below offline price 100.00; "
            "policy unified allows no online price below offline"
        )

    def test_unified_allows_equal_or_higher_online_price(self) -> None:
        lines = [PriceLine("A", 100, 100), PriceLine("B", 120, 100)]
        assert check_prices(lines, policy="unified", max_online_discount=MAX) == []

    def test_only_the_violating_lines_are_returned_in_order(self) -> None:
        lines = [PriceLine("A", 60, 100), PriceLine("B", 90, 100), PriceLine("C", 70, 100)]
        assert [v.sku for v in check_prices(lines, policy="flexible", max_online_discount=0.2)] == ["A", "C"]

    def test_float_inputs_do_not_pick_up_binary_noise(self) -> None:
        violations = check_prices([PriceLine("A", 79.99, 100.0)], policy="flexible", max_online_discount=0.2)
        assert violations[0].discount == Decimal("0.2001")

    def test_unknown_policy_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown price policy 'cheap'"):
            check_prices([], policy="cheap", max_online_discount=MAX)

    @pytest.mark.parametrize("offline", [0, -5])
    def test_non_positive_offline_price_is_refused(self, offline: int) -> None:
        with pytest.raises(ValueError, match="SKU A: offline price must be positive"):
            check_prices([PriceLine("A", 10, offline)], policy="flexible", max_online_discount=MAX)

    def test_negative_online_price_is_refused(self) -> None:
        with pytest.raises(ValueError, match="online price must not be negative"):
            check_prices([PriceLine("A", -1, 10)], policy="flexible", max_online_discount=MAX)

    @pytest.mark.parametrize("maximum", [-0.1, 1, 1.5])
    def test_out_of_range_max_discount_is_refused(self, maximum: float) -> None:
        with pytest.raises(ValueError, match="max_online_discount"):
            check_prices([], policy="flexible", max_online_discount=maximum)


class TestPriceTable:
    def test_one_json_ready_row_per_sku(self) -> None:
        lines = [PriceLine("A", "80.00", "100.00"), PriceLine("B", "75", "100"), PriceLine("C", "110", "100")]
        allowed = {"allowed_pct": "20.00"}
        assert price_table(lines, policy="flexible", max_online_discount=0.2) == [
            {"sku": "A", "online": "80.00", "offline": "100.00", "discount_pct": "20.00", **allowed, "ok": True},
            {"sku": "B", "online": "75", "offline": "100", "discount_pct": "25.00", **allowed, "ok": False},
            {"sku": "C", "online": "110", "offline": "100", "discount_pct": "-10.00", **allowed, "ok": True},
        ]

    def test_unified_allows_zero_percent(self) -> None:
        rows = price_table([PriceLine("A", 99, 100)], policy="unified", max_online_discount=0.2)
        assert (rows[0]["allowed_pct"], rows[0]["ok"]) == ("0.00", False)

    def test_unknown_policy_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown price policy"):
            price_table([], policy="mixed", max_online_discount=0.2)
