"""Budget thresholds: the owner approves spend above 50,000."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ecomflow.engine.rules.budget import approver_role

pytestmark = pytest.mark.db_independent


class TestApproverRole:
    @pytest.mark.parametrize("amount", [0, 1200, 49_999.99, 50_000, Decimal("50000.00")])
    def test_up_to_the_threshold_operations_approves(self, amount: Decimal | float | int) -> None:
        assert approver_role(amount, owner_above=50_000) == "operations"

    @pytest.mark.parametrize("amount", [50_000.01, Decimal("50000.01"), 120_000])
    def test_above_the_threshold_the_owner_approves(self, amount: Decimal | float | int) -> None:
        assert approver_role(amount, owner_above=Decimal("50000")) == "owner"

    def test_threshold_may_be_a_float(self) -> None:
        assert approver_role(Decimal("1000.1"), owner_above=1000.0) == "owner"
        assert approver_role(Decimal("1000"), owner_above=1000.0) == "operations"
