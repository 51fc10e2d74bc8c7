"""七日无理由退货: the no-reason return policy."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.rules.returns_policy import ReturnVerdict, check_return_policy

DELIVERED = date(2025, 5, 1)
EXCLUDED = frozenset({"custom_made", "fresh", "digital", "opened_hygiene"})


def _judge(*, days: int = 3, category: str = "normal") -> ReturnVerdict:
    return check_return_policy(
        delivered_on=DELIVERED,
        requested_on=DELIVERED + timedelta(days=days),
        category=category,
        no_reason_days=7,
        excluded_categories=EXCLUDED,
    )


class TestCheckReturnPolicy:
    @pytest.mark.parametrize("days", [0, 1, 6, 7])
    def test_within_seven_days_is_eligible(self, days: int) -> None:
        verdict = _judge(days=days)
        assert verdict == ReturnVerdict(eligible=True, days_since_delivery=days, reasons=())

    def test_day_eight_is_too_late(self) -> None:
        verdict = _judge(days=8)
        assert not verdict.eligible
        assert verdict.days_since_delivery == 8
        assert verdict.reasons == ("requested 8 days after delivery; the limit is 7 days",)

    @pytest.mark.parametrize("category", sorted(EXCLUDED))
    def test_each_excluded_category_is_refused_by_name(self, category: str) -> None:
        verdict = _judge(days=1, category=category)
        assert not verdict.eligible
        assert verdict.reasons == (f"category {category} is excluded from no-reason returns",)

    def test_delivery_after_the_request_is_refused(self) -> None:
        verdict = _judge(days=-2)
        assert not verdict.eligible
        assert verdict.days_since_delivery == -2
        assert verdict.reasons == ("delivery date 2025-05-01 is after the request date 2025-04-29",)

    def test_every_broken_rule_is_reported(self) -> None:
        verdict = _judge(days=30, category="fresh")
        assert len(verdict.reasons) == 2
        assert "30 days" in verdict.reasons[0] and "fresh" in verdict.reasons[1]

    def test_verdict_is_json_ready(self) -> None:
        assert _judge(days=9, category="digital").as_dict() == {
            "eligible": False,
            "days_since_delivery": 9,
            "reasons": [
                "requested 9 days after delivery; the limit is 7 days",
                "category digital is excluded from no-reason returns",
            ],
        }


class TestPolicyOfFlowsYaml:
    def test_flows_yaml_sets_seven_days_and_the_excluded_categories(self) -> None:
        returns = get_definitions().rules["returns"]
        assert returns["no_reason_days"] == 7
        assert set(returns["excluded_categories"]) == EXCLUDED
