"""A big import keeps PostgreSQL's planner statistics current, so each batch's key lookup stays an index probe."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text

from ecomflow.engine.db.planner_stats import GrowthAnalyzer
from ecomflow.engine.db.platform_models import PlatformOrder
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake import importer, ingest
from ecomflow.engine.intake.mapping import load_mapping
from ecomflow.engine.intake.records import KINDS
from ecomflow.sample_exports import items_path, write_export

pytestmark = pytest.mark.usefixtures("clean_db")


def _expected_rows_of_a_batch_lookup() -> float:
    """The planner's row estimate for one batch's lookup of 1,000 stored order numbers (ingest._existing's query)."""
    with session_scope() as session:
        keys = list(session.scalars(select(PlatformOrder.order_no).order_by(PlatformOrder.id).limit(1000)))
        query = select(PlatformOrder.order_no, PlatformOrder.id).where(
            PlatformOrder.platform == "tmall", PlatformOrder.order_no.in_(keys)
        )
        sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
        plan = session.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
        return plan[0]["Plan"]["Plan Rows"]


def test_an_import_of_thousands_leaves_the_planner_knowing_the_table(database_url: str, tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite plans by its indexes alone; there is no statistic to keep")
    orders = tmp_path / "orders.csv"
    write_export("orders", "tmall", orders, count=4000, seed=3)
    importer.import_file("orders", orders, load_mapping("tmall"), actor="cs-1", lines_path=items_path(orders))
    # Without the ANALYZEs the planner took the table for empty: a few rows expected, every stored one scanned.
    assert 500 <= _expected_rows_of_a_batch_lookup() <= 2000


def test_the_analyzer_marks_double(database_url: str) -> None:
    analyzer = GrowthAnalyzer(["platform_orders"], first=1000)
    marks = []
    with session_scope() as session:
        for written in (400, 1000, 1500, 2000, 2100, 9000, 9100):
            before = analyzer.next_at
            analyzer.written(session, written)
            if analyzer.next_at != before:
                marks.append(written)
    assert marks == [1000, 2000, 9000]
    assert analyzer.next_at == 16000
    assert analyzer.analyzed == (3 if database_url.startswith("postgresql") else 0)


def test_every_import_kind_names_the_tables_it_grows() -> None:
    assert set(ingest.TABLES_OF) == set(KINDS)
