"""A past quarter's figures for the next plan: its sales against targets and the review the owner recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.reports.quarter_figures import quarter_sales_figures
from ecomflow.flows.quarterly_marketing_plan import quarter_end, sales_lines
from tests.engine.reports.order_set import Line, Order, insert, shanghai
from tests.engine.reports.plans import insert_plan

ZONE = "Asia/Shanghai"


def review_task(plan_id: str, *, state: str, output: dict | None) -> None:
    with session_scope() as session:
        session.add(
            HumanTask(
                instance_id=plan_id,
                process_key="quarterly_marketing_plan",
                step_key="quarter_review",
                kind="human",
                role="owner",
                state=state,
                output=output,
                created_at=datetime(2027, 1, 1, tzinfo=UTC),
                completed_at=datetime(2027, 1, 3, tzinfo=UTC) if state == "completed" else None,
                completed_by="boss" if state == "completed" else None,
            )
        )


def figures() -> dict:
    with session_scope() as session:
        return quarter_sales_figures(session, quarter="2026-Q4", timezone=ZONE)


class TestQuarterSalesFigures:
    def test_sales_targets_channels_and_the_recorded_review(self, clean_db: str) -> None:
        plan_id = insert_plan({"2026-10": "100.00", "2026-11": "100.00", "2026-12": "100.00"}, {"visual": "300.00"})
        line = [Line("TEA-100", Decimal("80.00"), 1)]
        insert(
            [
                Order(
                    "jd", "q1", "专营店", "amy", "completed", Decimal("80.00"), shanghai("2026-12-31T23:59:59"), line
                ),
                Order(
                    "jd", "q2", "专营店", "bob", "completed", Decimal("80.00"), shanghai("2027-01-01T00:00:00"), line
                ),
            ]
        )
        actions = [{"action": "补货冬季外套", "department": "product"}]
        review_task(plan_id, state="completed", output={"assessment": "十二月缺货", "actions": actions})
        result = figures()
        assert result["targets"]["total"] == {
            "key": "total",
            "target": "300.00",
            "actual": "80.00",
            "gap": "-220.00",
            "attainment": "0.2667",
        }
        assert [(c["key"], c["gmv"]) for c in result["channels"]] == [("jd", "80.00")]
        assert result["review"]["actions"] == actions and result["review"]["by"] == "boss"
        markdown = "\n".join(sales_lines(result))
        assert "| 2026-12 | 100.00 | 80.00 | -20.00 | 0.8000 |" in markdown
        assert "- 补货冬季外套 (product)" in markdown

    def test_an_open_review_is_not_yet_recorded(self, clean_db: str) -> None:
        plan_id = insert_plan({"2026-10": "100.00"}, {})
        review_task(plan_id, state="open", output=None)
        result = figures()
        assert result["review"] is None
        assert "No quarter-end review recorded for that quarter." in sales_lines(result)


def test_a_quarter_ends_at_local_midnight_as_the_next_begins() -> None:
    assert quarter_end("2026-Q4") == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert quarter_end("2027-Q1").isoformat() == "2027-04-01T00:00:00+08:00"
