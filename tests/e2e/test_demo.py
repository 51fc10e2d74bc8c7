"""`ecomflow demo --drive`: every process, played by simulated staff over HTTP, runs to its end."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from ecomflow.demo import DEMO_EXPORTS, STARTED_BY_WAVES, run_demo
from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformRefund
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.reports.sales import sales_report
from ecomflow.flows import implemented_flows
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


class TestDemo:
    def test_every_process_runs_to_completion_with_its_children(
        self, stack: Stack, capsys: pytest.CaptureFixture[str]
    ) -> None:
        run_demo(drive_staff=True, api=stack.api_url, timeout=240)
        output = capsys.readouterr().out
        assert "ended" in output
        with session_scope() as session:
            demo = session.scalars(select(ProcessInstance).where(ProcessInstance.business_key.like("DEMO-%"))).all()
            started_processes = {i.process_key for i in demo if i.parent_id is None}
            children = session.scalars(
                select(ProcessInstance).where(ProcessInstance.parent_id.in_([i.id for i in demo]))
            ).all()
        assert started_processes == set(implemented_flows()) - STARTED_BY_WAVES
        assert len(started_processes) >= 13
        assert {i.state for i in demo} == {"completed"}
        assert children, "the plan, campaign and photo shoot start children"
        # The imported Tmall exports: orders of today and yesterday give the daily report its sales.
        assert output.count("imported ") == len(DEMO_EXPORTS) and "rejected 0" in output
        today = datetime.now(ZoneInfo(get_definitions().timezone)).date()
        with session_scope() as session:
            sales = sales_report(session, first=today, last=today, timezone=get_definitions().timezone, by="day")
            assert session.scalar(select(func.count()).select_from(PlatformRefund)) > 0
            paid = session.scalars(select(PlatformOrder).where(PlatformOrder.status == "paid")).all()
        # Every paid order of the files joined a wave (or left one as a case of its own).
        assert paid and all(order.wave_id is not None for order in paid)
        assert sales.total.paid_orders > 0 and sales.total.gmv > 0
