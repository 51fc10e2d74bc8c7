"""七日无理由退货 and the seller's fault: the return policy."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.rules.returns_policy import ReturnVerdict, check_return_policy

pytestmark = pytest.mark.db_independent

DELIVERED = date(2025, 5, 1)
EXCLUDED = frozenset({"custom_made", "fresh", "opened_hygiene"})
WHEN_OPENED = frozenset({"digital"})
SELLER_FAULT = frozenset({"faulty", "wrong_item", "not_as_described"})


def _judge(*, days: int = 3, category: str = "normal", cause: str = "no_reason", opened: bool = False) -> ReturnVerdict:
    return check_return_policy(
        delivered_on=DELIVERED,
        requested_on=DELIVERED + timedelta(days=days),
        category=category,
        no_reason_days=7,
        excluded_categories=EXCLUDED,
        cause=cause,
        opened=opened,
        excluded_when_opened=WHEN_OPENED,
        seller_fault_causes=SELLER_FAULT,
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
        assert _judge(days=9, category="digital", opened=True).as_dict() == {
            "eligible": False,
            "days_since_delivery": 9,
            "reasons": [
                "requested 9 days after delivery; the limit is 7 days",
                "category digital is excluded from no-reason returns once opened or downloaded",
            ],
            "seller_fault": False,
            "shipping_paid_by": "buyer",
        }

    def test_digital_goods_still_sealed_may_be_returned(self) -> None:
        assert _judge(days=2, category="digital").eligible
        assert not _judge(days=2, category="digital", opened=True).eligible

    @pytest.mark.parametrize("cause", sorted(SELLER_FAULT))
    def test_a_sellers_fault_has_no_day_limit_and_the_seller_pays_shipping(self, cause: str) -> None:
        verdict = _judge(days=45, category="digital", opened=True, cause=cause)
        assert verdict == ReturnVerdict(
            eligible=True, days_since_delivery=45, reasons=(), seller_fault=True, shipping_paid_by="seller"
        )

    def test_a_no_reason_case_ships_back_at_the_buyers_cost(self) -> None:
        assert _judge(days=1).shipping_paid_by == "buyer"

    def test_an_unknown_cause_is_not_eligible(self) -> None:
        verdict = _judge(cause="changed_mind_twice")
        assert verdict.reasons == ("cause changed_mind_twice is neither no-reason nor a seller's fault",)

    def test_not_delivered_yet_has_no_day_count(self) -> None:
        verdict = check_return_policy(
            delivered_on=None,
            requested_on=DELIVERED,
            category="normal",
            no_reason_days=7,
            excluded_categories=EXCLUDED,
        )
        assert (verdict.eligible, verdict.days_since_delivery) == (True, None)


class TestPolicyOfFlowsYaml:
    def test_flows_yaml_sets_seven_days_and_the_excluded_categories(self) -> None:
        returns = get_definitions().rules["returns"]
        assert returns["no_reason_days"] == 7
        assert set(returns["excluded_categories"]) == EXCLUDED
        assert set(returns["excluded_when_opened"]) == WHEN_OPENED
        assert set(returns["seller_fault_causes"]) == SELLER_FAULT
