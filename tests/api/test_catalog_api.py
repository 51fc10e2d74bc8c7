"""Master data and stock over HTTP: create, search with keyset paging, 4xx naming field and rule, the ledger read."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from ecomflow.engine.db.models import AuditEvent
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.catalog import save_location
from tests.api.conftest import assert_error, field_names


def product(code: str, *, title: str = "纯棉T恤", price: str = "199.00", **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "title": title,
        "category": "T恤",
        "brand": "棉言",
        "variants": [
            {"code": f"{code}-M", "list_price": price, "colour": "白色", "size": "M", "barcode": "6900001"},
            {"code": f"{code}-L", "list_price": price, "colour": "白色", "size": "L"},
        ],
        **extra,
    }


class TestCatalog:
    def test_create_get_update_audited_and_searched_with_keyset_paging(self, login) -> None:
        li = login("product", name="li")
        for number in range(5):
            created = li.post("/catalog/products", json=product(f"TEE{number}", title=f"纯棉T恤 {number}号"))
            assert created.status_code == 201, created.text
        assert li.post("/catalog/products", json=product("SCARF", title="羊绒围巾")).status_code == 201

        got = li.get("/catalog/products/TEE1").json()
        assert [(v["code"], v["attributes"], v["list_price"]) for v in got["variants"]] == [
            ("TEE1-L", {"colour": "白色", "size": "L"}, "199.00"),
            ("TEE1-M", {"colour": "白色", "size": "M"}, "199.00"),
        ]
        first = li.get("/catalog/products", params={"q": "T恤", "limit": 2}).json()
        second = li.get("/catalog/products", params={"q": "T恤", "limit": 2, "after": first["next_cursor"]}).json()
        third = li.get("/catalog/products", params={"q": "T恤", "limit": 2, "after": second["next_cursor"]}).json()
        assert [p["code"] for p in first["items"] + second["items"] + third["items"]] == [f"TEE{n}" for n in range(5)]
        assert third["next_cursor"] is None
        assert [p["code"] for p in li.get("/catalog/products", params={"q": "TEE3-L"}).json()["items"]] == ["TEE3"]
        assert [p["code"] for p in li.get("/catalog/products", params={"q": "围巾"}).json()["items"]] == ["SCARF"]

        body = product("TEE1", price="219.00")
        del body["code"]
        updated = li.http.put("/catalog/products/TEE1", json=body | {"online_only": True})
        assert updated.status_code == 200 and updated.json()["online_only"] is True
        assert {v["list_price"] for v in updated.json()["variants"]} == {"219.00"}
        with session_scope() as session:
            kinds = session.scalars(select(AuditEvent.type).where(AuditEvent.type.like("catalog.product%"))).all()
        assert kinds.count("catalog.product_created") == 6 and kinds.count("catalog.product_updated") == 1

    def test_bad_input_is_a_4xx_naming_field_and_rule(self, login) -> None:
        li = login("product", name="li")
        bad = product("BAD CODE", price="0")
        body = assert_error(li.post("/catalog/products", json=bad), 422, "ValidationFailed")
        assert set(field_names(body)) >= {"variants[0].list_price", "variants[1].list_price"}
        body = assert_error(li.post("/catalog/products", json=product("BAD CODE")), 422, "ValidationFailed")
        assert [(f["field"], f["rule"]) for f in body["fields"]] == [
            ("code", "pattern"),
            ("variants[0].code", "pattern"),
            ("variants[1].code", "pattern"),
        ]
        twice = product("TWICE") | {
            "variants": [{"code": "X-1", "list_price": "9"}, {"code": "X-1", "list_price": "9"}]
        }
        body = assert_error(li.post("/catalog/products", json=twice), 422, "ValidationFailed")
        assert [(f["field"], f["rule"]) for f in body["fields"]] == [("variants[1].code", "unique")]
        assert li.post("/catalog/products", json=product("ONCE")).status_code == 201
        assert_error(li.post("/catalog/products", json=product("ONCE")), 409, "Conflict")
        # A SKU of another product cannot be taken over.
        thief = product("OTHER") | {"variants": [{"code": "ONCE-M", "list_price": "1"}]}
        assert (
            "belongs to another product"
            in assert_error(li.post("/catalog/products", json=thief), 409, "Conflict")["detail"]
        )

    def test_export_is_an_xlsx_in_the_import_columns(self, login) -> None:
        li = login("product", name="li")
        li.post("/catalog/products", json=product("TEE"))
        response = li.get("/catalog/export.xlsx")
        assert response.status_code == 200
        rows = list(load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0].values)
        assert rows[0][:10] == (
            "product_code",
            "title",
            "category",
            "brand",
            "online_only",
            "sku",
            "colour",
            "size",
            "barcode",
            "list_price",
        )
        assert [(r[0], r[5], r[9]) for r in rows[1:]] == [("TEE", "TEE-L", 199), ("TEE", "TEE-M", 199)]


class TestStock:
    def test_adjust_read_per_location_and_movements_and_refuse_negative(self, login) -> None:
        li, cs = login("product", name="li"), login("customer_service", name="chen")
        li.post("/catalog/products", json=product("TEE"))
        with session_scope() as session:
            save_location(session, code="WH-ONLINE", name="线上仓", kind="warehouse", actor="t")
        adjust = {"location": "WH-ONLINE", "quantity": 5, "reason": "opening count", "business_key": "count-1"}
        assert li.post("/stock/TEE-M/adjustments", json=adjust).status_code == 200
        again = li.post("/stock/TEE-M/adjustments", json=adjust).json()  # the same key moves nothing
        assert (again["on_hand"], again["available"]) == (5, 5)
        stock = cs.get("/stock/TEE-M").json()
        assert [(r["location"], r["on_hand"], r["reserved"]) for r in stock["locations"]] == [("WH-ONLINE", 5, 0)]
        moves = cs.get("/stock/TEE-M/movements").json()
        assert [(m["kind"], m["quantity"], m["reason"], m["actor"]) for m in moves["items"]] == [
            ("adjust", 5, "opening count", "li")
        ]
        too_many = adjust | {"quantity": -6, "business_key": "count-2"}
        body = assert_error(li.post("/stock/TEE-M/adjustments", json=too_many), 409, "StockShort")
        assert "SKU TEE-M at WH-ONLINE" in body["detail"]
        no_reason = adjust | {"reason": " ", "business_key": "count-3"}
        body = assert_error(li.post("/stock/TEE-M/adjustments", json=no_reason), 422, "ValidationFailed")
        assert [(f["field"], f["rule"]) for f in body["fields"]] == [("reason", "required")]
        assert_error(cs.post("/stock/TEE-M/adjustments", json=adjust | {"business_key": "k4"}), 403, "Forbidden")
