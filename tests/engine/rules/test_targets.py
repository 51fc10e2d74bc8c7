"""目标分解: a quarter's revenue over its months and departments, summing exactly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ecomflow.engine.rules.targets import decompose_targets

pytestmark = pytest.mark.db_independent

MONTHS = [0.3, 0.3, 0.4]
DEPARTMENTS = {"product": 0.25, "promotion": 0.30, "visual": 0.15, "customer_service": 0.20, "warehouse": 0.10}


def _decompose(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "revenue_target": Decimal("3000000"),
        "quarter": "2027-Q1",
        "month_weights": MONTHS,
        "department_weights": DEPARTMENTS,
    }
    return decompose_targets(**{**args, **overrides})


def _total(rows: list[dict[str, str]]) -> Decimal:
    return sum((Decimal(row["revenue"]) for row in rows), Decimal(0))


class TestDecomposeTargets:
    def test_flows_yaml_weights_split_a_round_target(self) -> None:
        assert _decompose() == {
            "months": [
                {"month": "2027-01", "revenue": "900000.00"},
                {"month": "2027-02", "revenue": "900000.00"},
                {"month": "2027-03", "revenue": "1200000.00"},
            ],
            "departments": [
                {"department": "product", "weight": "0.25", "revenue": "750000.00"},
                {"department": "promotion", "weight": "0.30", "revenue": "900000.00"},
                {"department": "visual", "weight": "0.15", "revenue": "450000.00"},
                {"department": "customer_service", "weight": "0.20", "revenue": "600000.00"},
                {"department": "warehouse", "weight": "0.10", "revenue": "300000.00"},
            ],
        }

    @pytest.mark.parametrize(
        ("quarter", "months"),
        [
            ("2027-Q1", ["2027-01", "2027-02", "2027-03"]),
            ("2027-Q2", ["2027-04", "2027-05", "2027-06"]),
            ("2027-Q3", ["2027-07", "2027-08", "2027-09"]),
            ("2028-Q4", ["2028-10", "2028-11", "2028-12"]),
        ],
    )
    def test_quarter_gives_its_three_months(self, quarter: str, months: list[str]) -> None:
        assert [row["month"] for row in _decompose(quarter=quarter)["months"]] == months

    def test_rounding_remainder_goes_to_the_last_item(self) -> None:
        thirds = [1 / 3, 1 / 3, 1 / 3]
        result = _decompose(revenue_target=100, month_weights=thirds, department_weights={"a": 1 / 3, "b": 2 / 3})
        assert [row["revenue"] for row in result["months"]] == ["33.33", "33.33", "33.34"]
        assert [row["revenue"] for row in result["departments"]] == ["33.33", "66.67"]

    def test_half_cents_round_up_and_lists_sum_exactly(self) -> None:
        result = _decompose(revenue_target="1000.05", month_weights=[0.5, 0.3, 0.2])
        assert [row["revenue"] for row in result["months"]] == ["500.03", "300.02", "200.00"]
        assert _total(result["months"]) == _total(result["departments"]) == Decimal("1000.05")

    def test_awkward_target_sums_exactly(self) -> None:
        result = _decompose(revenue_target=1234567.89)
        assert _total(result["months"]) == _total(result["departments"]) == Decimal("1234567.89")

    def test_zero_target_is_allowed(self) -> None:
        assert _total(_decompose(revenue_target=0)["months"]) == Decimal("0.00")

    def test_weights_within_tolerance_pass(self) -> None:
        assert _decompose(month_weights=[0.3, 0.3, 0.4000005])["months"][2]["revenue"] == "1200000.00"

    @pytest.mark.parametrize("weights", [[0.3, 0.3, 0.3], [0.5, 0.5, 0.1]])
    def test_month_weights_not_summing_to_one_are_refused(self, weights: list[float]) -> None:
        with pytest.raises(ValueError, match="month weights must sum to 1"):
            _decompose(month_weights=weights)

    def test_department_weights_not_summing_to_one_are_refused(self) -> None:
        with pytest.raises(ValueError, match="department weights must sum to 1"):
            _decompose(department_weights={**DEPARTMENTS, "warehouse": 0.2})

    def test_negative_weight_is_refused(self) -> None:
        with pytest.raises(ValueError, match="department weights must be non-negative"):
            _decompose(department_weights={"a": 1.5, "b": -0.5})

    def test_wrong_number_of_month_weights_is_refused(self) -> None:
        with pytest.raises(ValueError, match="month weights need 3 entries"):
            _decompose(month_weights=[0.5, 0.5])

    @pytest.mark.parametrize("quarter", ["2027Q1", "2027-Q5", "2027-Q0", "27-Q1", "2027-q1", ""])
    def test_malformed_quarter_is_refused(self, quarter: str) -> None:
        with pytest.raises(ValueError, match="malformed quarter"):
            _decompose(quarter=quarter)

    def test_negative_target_is_refused(self) -> None:
        with pytest.raises(ValueError, match="revenue target must not be negative"):
            _decompose(revenue_target=-1)
