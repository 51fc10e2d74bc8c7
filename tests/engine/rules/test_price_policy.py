"""同一定价，灵活促销 as the deck means it: one list price; below it a deviation, at the red line refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ecomflow.engine.rules.price_policy import (
    DEVIATION,
    EXEMPT,
    OK,
    REFUSED,
    PriceRule,
    judge_price,
    to_decimal,
)

pytestmark = pytest.mark.db_independent

UNIFIED = PriceRule()
FLEXIBLE = PriceRule(policy="flexible", red_line=Decimal("0.20"), max_online_discount=Decimal("0.10"))


def judge(price: object, list_price: object = "100", *, online_only: bool = False, rule: PriceRule = UNIFIED) -> str:
    return judge_price(
        sku="TEE", price=price, list_price=to_decimal(list_price), online_only=online_only, rule=rule
    ).verdict


class TestUnified:
    def test_the_list_price_and_above_keep_to_the_rule(self) -> None:
        assert [judge(100), judge(120), judge("100.00")] == [OK, OK, OK]

    def test_one_cent_below_the_list_price_is_a_deviation(self) -> None:
        verdict = judge_price(sku="TEE", price="99.99", list_price=Decimal(100), online_only=False, rule=UNIFIED)
        assert verdict.verdict == DEVIATION
        assert verdict.message == (
            "SKU TEE: online price 99.99 is 0.01% below the list price 100; policy unified needs the owner's "
            "approval with a reason"
        )

    def test_a_gap_just_under_the_red_line_is_a_deviation(self) -> None:
        assert judge("80.01") == DEVIATION

    def test_a_gap_of_exactly_the_red_line_is_refused(self) -> None:
        verdict = judge_price(sku="TEE", price=80, list_price=Decimal(100), online_only=False, rule=UNIFIED)
        assert (verdict.verdict, verdict.gap) == (REFUSED, Decimal("0.2"))
        assert "20% or more is the red line and is refused" in verdict.message

    def test_beyond_the_red_line_is_refused(self) -> None:
        assert judge(50) == REFUSED


class TestOnlineOnlyAndUnknown:
    def test_an_online_only_product_is_outside_the_rule_even_far_below(self) -> None:
        assert judge(10, online_only=True) == EXEMPT

    def test_a_sku_without_list_price_is_refused_naming_it(self) -> None:
        verdict = judge_price(sku="NOPE", price=10, list_price=None, online_only=False, rule=UNIFIED)
        assert (verdict.verdict, verdict.message) == (REFUSED, "SKU NOPE is not in the catalogue: it has no list price")

    @pytest.mark.parametrize("price", [0, -1])
    def test_a_non_positive_online_price_is_refused_as_input(self, price: int) -> None:
        with pytest.raises(ValueError, match="an online price must be positive"):
            judge(price)


class TestFlexible:
    def test_within_max_online_discount_is_ok(self) -> None:
        assert [judge(90, rule=FLEXIBLE), judge(95, rule=FLEXIBLE)] == [OK, OK]

    def test_beyond_it_a_deviation_and_the_red_line_still_refuses(self) -> None:
        assert [judge("89.99", rule=FLEXIBLE), judge(80, rule=FLEXIBLE)] == [DEVIATION, REFUSED]


class TestRuleFromConfig:
    def test_defaults_are_unified_with_a_twenty_percent_red_line(self) -> None:
        assert PriceRule.of({}) == PriceRule(policy="unified", red_line=Decimal("0.20"))

    def test_floats_from_yaml_stay_exact(self) -> None:
        rule = PriceRule.of({"default": "flexible", "red_line": 0.2, "max_online_discount": 0.1})
        assert (rule.red_line, rule.max_online_discount) == (Decimal("0.2"), Decimal("0.1"))

    @pytest.mark.parametrize(
        ("config", "match"),
        [
            ({"default": "cheap"}, "unknown price policy 'cheap'"),
            ({"red_line": 0}, "red_line must be above 0"),
            ({"red_line": 1}, "red_line must be above 0"),
            ({"max_online_discount": -0.1}, "max_online_discount must be at least 0"),
        ],
    )
    def test_bad_config_is_refused(self, config: dict[str, object], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            PriceRule.of(config)

    def test_to_decimal_refuses_nan(self) -> None:
        with pytest.raises(ValueError, match="not a finite number"):
            to_decimal("NaN")
