"""The daily report page and its XLSX download, over real HTTP."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

import pytest
from openpyxl import load_workbook

from ecomflow.engine.people.principals import Principal
from tests.engine.reports.order_set import Line, Order, Refund, insert, shanghai
from tests.web.conftest import WebServer, sign_in


@pytest.fixture(scope="module")
def shop(staff: dict[str, Principal]) -> None:
    line = [Line("TEA-100", Decimal("88.00"), 1)]
    insert(
        [
            Order("taobao", "w1", "旗舰店", "amy", "paid", Decimal("88.00"), shanghai("2026-11-11T09:00:00"), line),
            Order(
                "jd",
                "w2",
                "专营店",
                "bob",
                "completed",
                Decimal("12.00"),
                shanghai("2026-11-11T21:00:00"),
                line,
                [Refund("wr", Decimal("12.00"), "refunded", shanghai("2026-11-11T22:00:00"), "TEA-100")],
            ),
        ]
    )


class TestDailyReportPage:
    def test_a_manager_sees_the_days_sales_and_a_download_link(self, shop: None, web_server: WebServer) -> None:
        with sign_in(web_server, "zhou", headers={"Accept-Language": "en"}) as http:
            page = http.get("/ui/reports/daily/2026-11-11")
        assert page.status_code == 200
        assert "Daily report 2026-11-11" in page.text
        assert "<td>100.00</td><td>2</td><td>2</td>" in page.text  # day total: GMV, orders, buyers
        assert 'href="/ui/reports/daily/2026-11-11.xlsx"' in page.text
        assert "The quarter&#39;s plan set no target for this month." in page.text

    def test_the_workbook_downloads_with_the_same_figures(self, shop: None, web_server: WebServer) -> None:
        with sign_in(web_server, "zhou") as http:
            answer = http.get("/ui/reports/daily/2026-11-11.xlsx")
        assert answer.status_code == 200
        sales = load_workbook(BytesIO(answer.content))["销售"]
        assert [c.value for c in sales[4]][:2] == ["当日合计", 100]
        assert [c.value for c in sales[4]][5:] == [12, 0.12]

    def test_the_date_picker_and_today_redirect(self, shop: None, web_server: WebServer) -> None:
        with sign_in(web_server, "zhou") as http:
            picked = http.get("/ui/reports/daily/2026-11-11", params={"day": "2026-11-10"})
            today = http.get("/ui/reports/daily")
            bad = http.get("/ui/reports/daily/2026-11-31")
        assert (picked.status_code, picked.headers["location"]) == (303, "/ui/reports/daily/2026-11-10")
        assert today.status_code == 303 and today.headers["location"].startswith("/ui/reports/daily/20")
        assert bad.status_code == 404

    def test_staff_are_refused(self, shop: None, web_server: WebServer) -> None:
        with sign_in(web_server, "wu") as http:
            assert http.get("/ui/reports/daily/2026-11-11").status_code == 403
            assert http.get("/ui/reports/daily/2026-11-11.xlsx").status_code == 403


class TestDashboardExports:
    def test_the_dashboard_links_the_exports_and_they_download(self, shop: None, web_server: WebServer) -> None:
        with sign_in(web_server, "zhou") as http:
            dashboard = http.get("/ui/dashboard", params={"days": "30"})
            assert 'href="/ui/exports/tasks?process=&amp;days=30&amp;format=xlsx"' in dashboard.text
            tasks = http.get("/ui/exports/tasks", params={"days": "30", "format": "xlsx"})
            kpis = http.get("/ui/exports/kpi", params={"group_by": "role", "format": "csv"})
            missing = http.get("/ui/exports/orders")
        assert tasks.status_code == 200
        assert load_workbook(BytesIO(tasks.content))["tasks"]["A1"].value == "任务ID Task"
        assert kpis.content.decode("utf-8").startswith("\ufeff分组 Key,完成 Done")
        assert kpis.content.decode("utf-8").splitlines()[-1].startswith("total,")
        assert missing.status_code == 404

    def test_staff_may_not_export_from_the_pages(self, shop: None, web_server: WebServer) -> None:
        with sign_in(web_server, "wu") as http:
            assert http.get("/ui/exports/tasks").status_code == 403
