"""The daily report page and its XLSX download, over real HTTP."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from ecomflow.engine.clock import utcnow
from ecomflow.engine.intake import importer
from ecomflow.engine.intake.mapping import load_mapping
from ecomflow.engine.people.principals import Principal
from tests.engine.reports.order_set import Line, Order, Refund, insert, shanghai
from tests.engine.reports.plans import insert_plan
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


class TestTargetsCard:
    def test_the_dashboard_charts_the_quarters_targets_against_actuals(self, shop: None, web_server: WebServer) -> None:
        insert_plan({"2026-10": "500.00", "2026-11": "1000.00", "2026-12": "1500.00"}, {"promotion": "3000.00"})
        with sign_in(web_server, "zhou", headers={"Accept-Language": "en"}) as http:
            page = http.get("/ui/dashboard", params={"quarter": "2026Q4"})
        assert page.status_code == 200
        card = page.text.split('data-testid="targets"')[1].split("</section>")[0]
        assert "2026-Q4 target and actual GMV per month (CNY)" in card
        # November: 1,000.00 set, 100.00 sold (the shop's two orders), 900 short, 10%.
        assert '<th scope="row">2026-11</th><td>1,000.00</td><td>100.00</td><td>-900.00</td><td>10.00%</td>' in card
        assert card.count("<rect") >= 6  # a target and an actual bar per month


class TestRoleKpisCard:
    def test_the_dashboard_shows_each_roles_kpi_with_what_it_is_computed_from(
        self, shop: None, web_server: WebServer, tmp_path
    ) -> None:
        today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
        path = tmp_path / "ztc.csv"
        rows = f"日期,计划名称,展现量,点击量,花费,总成交金额\r\n{today},爆款卫衣,2000,50,50.00,175.00\r\n"
        path.write_text(rows, encoding="gbk")
        importer.import_file("ads", path, load_mapping("tmall"), actor="zhou", ad_source="ztc")
        with sign_in(web_server, "zhou", headers={"Accept-Language": "en"}) as http:
            page = http.get("/ui/dashboard", params={"days": "7"})
        assert page.status_code == 200
        card = page.text.split('data-testid="role-kpis"')[1].split("</table>")[0]
        # 175.00 / 50.00 = 3.50, for 直通车 and for all ads; no creative is linked, so no CTR.
        assert "<td>Ad ROI (直通车)</td><td>3.50</td><td>GMV 175.00 / spend 50.00</td>" in card
        assert "<td>Ad ROI (all)</td><td>3.50</td>" in card
        assert "<td>CTR of approved creatives</td><td>—</td>" in card
        assert "Dispatch within the promise" in card and "Inquiry → order conversion" in card
