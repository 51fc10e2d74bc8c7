"""Migration 0013: PostgreSQL knows how state and at_risk go together, so it plans the at_risk inbox right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import get_engine
from tests.factories import make_instance

STATISTICS = "st_task_state_risk"


def _is_postgresql(url: str) -> bool:
    return url.startswith("postgresql")


def test_the_statistics_cover_state_and_at_risk(database_url: str) -> None:
    if not _is_postgresql(database_url):
        pytest.skip("extended statistics are PostgreSQL's; on SQLite migration 0013 changes nothing")
    with get_engine().connect() as connection:
        row = connection.execute(
            text(
                "SELECT s.stxkind, array_agg(a.attname::text ORDER BY a.attname) FROM pg_statistic_ext s "
                "JOIN pg_attribute a ON a.attrelid = s.stxrelid AND a.attnum = ANY(s.stxkeys) "
                "WHERE s.stxname = :name AND s.stxrelid = 'human_tasks'::regclass GROUP BY s.stxkind"
            ),
            {"name": STATISTICS},
        ).one()
    assert list(row[0]) == ["m"]
    assert row[1] == ["at_risk", "state"]


def test_the_planner_expects_the_at_risk_open_tasks_there_are(clean_db: str) -> None:
    if not _is_postgresql(clean_db):
        pytest.skip("extended statistics are PostgreSQL's; SQLite plans without them")
    instance_id = make_instance()
    due = datetime(2026, 12, 1, tzinfo=UTC)
    # As in production: many completed tasks, never at risk; among the few open ones, half at risk.
    rows = [{"state": "completed", "at_risk": False} for _ in range(3000)]
    rows += [{"state": "open", "at_risk": number % 2 == 0} for number in range(200)]
    with get_engine().begin() as connection:
        connection.execute(
            insert(HumanTask),
            [
                {
                    "instance_id": instance_id,
                    "process_key": "returns_exchange",
                    "step_key": f"step-{number}",
                    "kind": "human",
                    "role": "warehouse",
                    "due_at": due + timedelta(minutes=number),
                    **row,
                }
                for number, row in enumerate(rows)
            ],
        )
    with get_engine().connect() as connection:
        connection.execute(text("ANALYZE human_tasks"))
        plan = connection.execute(
            text("EXPLAIN (FORMAT JSON) SELECT id FROM human_tasks WHERE state = 'open' AND at_risk")
        ).scalar_one()
    # Independent columns would give 100/3200 × 200/3200 × 3200 ≈ 6 rows; the joint statistics give the 100.
    assert plan[0]["Plan"]["Plan Rows"] == pytest.approx(100, rel=0.2)
