"""GET /reports/sales over HTTP: the figures as exact strings, for managers only, bad dates refused."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from io import BytesIO

from openpyxl import load_workbook

from ecomflow.engine.reports.daily_xlsx import XLSX_TYPE
from tests.api.conftest import Caller, assert_error, field_names
from tests.engine.reports.order_set import Line, Order, Refund, insert, shanghai
from tests.engine.reports.plans import insert_plan

SALES = "/reports/sales"


def shop_orders() -> None:
    line = [Line("TEA-100", Decimal("60.00"), 2)]
    insert(
        [
            Order(
                "taobao", "a", "旗舰店", "amy", "completed", Decimal("120.00"), shanghai("2026-11-11T00:00:00"), line
            ),
            Order(
                "jd",
                "b",
                "专营店",
                "bob",
                "shipped",
                Decimal("33.33"),
                shanghai("2026-11-11T23:59:59"),
                line,
                [Refund("r1", Decimal("10.00"), "refunded", shanghai("2026-11-11T12:00:00"), None)],
            ),
        ]
    )


class TestSales:
    def test_a_manager_gets_the_day_as_exact_strings(self, login: Callable[..., Caller]) -> None:
        boss = login("owner")
        shop_orders()
        body = boss.get(SALES, params={"from": "2026-11-11", "to": "2026-11-12"}).json()
        assert [row["key"] for row in body["rows"]] == ["2026-11-11", "2026-11-12"]
        day = body["rows"][0]
        assert (day["gmv"], day["paid_orders"], day["buyers"], day["aov"]) == ("153.33", 2, 2, "76.67")
        assert (day["refund_amount"], day["refund_rate"]) == ("10.00", "0.0652")
        assert body["total"]["gmv"] == "153.33"

    def test_by_product_names_the_product(self, login: Callable[..., Caller]) -> None:
        boss = login("operations")
        shop_orders()
        body = boss.get(SALES, params={"from": "2026-11-11", "to": "2026-11-11", "by": "product"}).json()
        assert [(r["key"], r["label"], r["gmv"]) for r in body["rows"]] == [
            ("P-TEA", "P-TEA 标题", "153.33"),
            (None, None, "0.00"),
        ]

    def test_staff_are_refused(self, login: Callable[..., Caller]) -> None:
        response = login("warehouse").get(SALES)
        assert "figures rule" in assert_error(response, 403, "Forbidden")["detail"]

    def test_a_bad_date_names_the_field(self, login: Callable[..., Caller]) -> None:
        response = login("owner").get(SALES, params={"from": "11/11/2026"})
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["from"]

    def test_an_unknown_grouping_is_refused(self, login: Callable[..., Caller]) -> None:
        assert login("owner").get(SALES, params={"by": "colour"}).status_code == 422


class TestDailyXlsx:
    def test_a_manager_downloads_the_days_workbook(self, login: Callable[..., Caller]) -> None:
        shop_orders()
        response = login("owner").get("/reports/daily/2026-11-11.xlsx")
        assert response.status_code == 200
        assert response.headers["content-type"] == XLSX_TYPE
        assert 'filename="daily-report-2026-11-11.xlsx"' in response.headers["content-disposition"]
        sales = load_workbook(BytesIO(response.content))["销售"]
        assert [c.value for c in sales[4]][:3] == ["当日合计", 153.33, 2]

    def test_staff_and_bad_dates_are_refused(self, login: Callable[..., Caller]) -> None:
        assert_error(login("visual").get("/reports/daily/2026-11-11.xlsx"), 403, "Forbidden")
        response = login("owner").get("/reports/daily/2026-13-01.xlsx")
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["date"]


class TestTargets:
    def test_a_manager_gets_the_quarters_targets_against_actuals(self, login: Callable[..., Caller]) -> None:
        boss = login("owner")
        insert_plan({"2026-11": "1000.00"}, {"promotion": "1000.00"})
        shop_orders()
        body = boss.get("/reports/targets", params={"quarter": "2026Q4"}).json()
        assert body["quarter"] == "2026-Q4" and body["as_of"] <= "2026-12-31"
        november = next(m for m in body["months"] if m["key"] == "2026-11")
        assert (november["target"], november["actual"], november["gap"]) == ("1000.00", "153.33", "-846.67")
        assert body["departments"] == [
            {"key": "promotion", "target": "1000.00", "actual": "153.33", "gap": "-846.67", "attainment": "0.1533"}
        ]

    def test_a_bad_quarter_names_the_field_and_staff_are_refused(self, login: Callable[..., Caller]) -> None:
        response = login("owner").get("/reports/targets", params={"quarter": "Q4"})
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["quarter"]
        assert_error(login("promotion").get("/reports/targets"), 403, "Forbidden")


class TestRoleKpis:
    def test_a_manager_gets_every_roles_kpis(self, login: Callable[..., Caller]) -> None:
        shop_orders()
        body = login("owner").get("/reports/roles", params={"from": "2026-11-11", "to": "2026-11-11"}).json()
        assert body["customer_service"] == {
            "inquiries": 0,
            "ordered": 0,
            "conversion": None,
            "first_response_p50_seconds": None,
            "first_response_p90_seconds": None,
        }
        # Both orders are long past their 48 h and never shipped.
        assert body["warehouse"] == {"due": 2, "within_promise": 0, "not_shipped": 2, "dispatch_rate": "0.0000"}
        # No ad imported, no campaign, no creative: zeros and nulls, never a made-up ratio.
        assert body["promotion"] == {
            "ads": [],
            "channels": [],
            "ads_total": {
                "source": None,
                "plan": None,
                "impressions": 0,
                "clicks": 0,
                "spend": "0.00",
                "gmv": "0.00",
                "roi": None,
            },
            "events": [],
        }
        assert body["visual"]["total"]["ctr"] is None and body["visual"]["unlinked"] == 0
        assert body["left_out"] == {}

    def test_the_ad_roi_of_an_imported_report_is_served_exactly(self, login: Callable[..., Caller], tmp_path) -> None:
        path = tmp_path / "ztc.csv"
        path.write_text(
            "日期,计划名称,展现量,点击量,花费,总成交金额\r\n"
            "2026-11-11,爆款卫衣,1000,40,80.00,300.00\r\n"
            "2026-11-11,新品牛仔,500,10,30.00,0.00\r\n",
            encoding="gbk",
        )
        caller = login("owner")
        files = {"file": (path.name, path.read_bytes(), "text/csv")}
        uploaded = caller.post("/imports", data={"kind": "ads", "platform": "tmall", "source": "ztc"}, files=files)
        assert uploaded.status_code == 201, uploaded.text
        body = caller.get("/reports/roles", params={"from": "2026-11-11", "to": "2026-11-11"}).json()["promotion"]
        assert [(r["plan"], r["spend"], r["gmv"], r["roi"]) for r in body["ads"]] == [
            ("新品牛仔", "30.00", "0.00", "0.00"),
            ("爆款卫衣", "80.00", "300.00", "3.75"),
        ]
        # 300.00 / 110.00 = 2.7272… → 2.73
        assert (body["ads_total"]["spend"], body["ads_total"]["roi"]) == ("110.00", "2.73")

    def test_staff_are_refused(self, login: Callable[..., Caller]) -> None:
        assert_error(login("warehouse").get("/reports/roles"), 403, "Forbidden")
