"""A quarterly plan's stored targets, written straight to kpi_targets for the figures' tests."""

from __future__ import annotations

from decimal import Decimal

from ecomflow.engine.db.models import KpiTarget
from ecomflow.engine.db.sessions import session_scope
from tests.factories import make_instance


def insert_plan(months: dict[str, str], departments: dict[str, str], *, quarter: str = "2026-Q4") -> str:
    """Start a quarterly plan instance (no flow run) and store its targets; return its id."""
    plan_id = make_instance(process="quarterly_marketing_plan", params={"quarter": quarter})
    with session_scope() as session:
        for scope, targets in (("month", months), ("department", departments)):
            for key, revenue in targets.items():
                session.add(
                    KpiTarget(plan_instance_id=plan_id, quarter=quarter, scope=scope, key=key, revenue=Decimal(revenue))
                )
    return plan_id
