"""The catalogue page: search, a product with its variants, stock per location, listings and campaigns."""

from __future__ import annotations

import uuid
from decimal import Decimal

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.people.principals import SYSTEM
from ecomflow.engine.shop.catalog import ProductIn, VariantIn, save_product, seed_sku
from ecomflow.engine.shop.stock import move
from ecomflow.engine.shop.variant_listings import ListedVariant, record_variant_listings
from tests.web.conftest import sign_in


def make_product() -> str:
    """A product of one variant with 3 units at a store; the two seeded SKUs open both locations."""
    code = f"TEE{uuid.uuid4().hex[:6]}"
    with session_scope() as session:
        seed_sku(session, sku=f"{code}-M", title="placeholder", list_price=199, stock=7)
        seed_sku(session, sku=f"{code}-M", title="placeholder", list_price=199, stock=2, location="ST-SH01")
        product = ProductIn(
            code=code,
            title="纯棉圆领T恤 测试款",
            category="T恤",
            brand="棉言",
            variants=[
                VariantIn(code=f"{code}-WHT-L", list_price=Decimal("199"), colour="白色", size="L"),
            ],
        )
        save_product(session, principal=SYSTEM, product=product, create=True)
        move(session, kind="restock", sku=f"{code}-WHT-L", location="ST-SH01", quantity=3, business_key=code, actor="t")
    return code


class TestCatalogPages:
    def test_search_finds_a_product_by_title_and_by_sku(self, staff, web_server):
        code = make_product()
        with sign_in(web_server, "lin") as http:
            by_title = http.get("/ui/catalog", params={"q": "测试款"})
            by_sku = http.get("/ui/catalog", params={"q": f"{code}-WHT-L"})
            nothing = http.get("/ui/catalog", params={"q": "没有这种商品"})
        assert by_title.status_code == 200 and f'data-product="{code}"' in by_title.text
        assert f'data-product="{code}"' in by_sku.text
        assert 'data-product="' not in nothing.text and "没有找到商品" in nothing.text

    def test_a_product_shows_its_variants_list_price_and_stock_per_location(self, staff, web_server):
        code = make_product()
        with sign_in(web_server, "lin") as http:
            page = http.get(f"/ui/catalog/{code}")
            missing = http.get("/ui/catalog/NO-SUCH-PRODUCT")
        assert page.status_code == 200 and "纯棉圆领T恤 测试款" in page.text
        row = page.text.split(f'data-sku="{code}-WHT-L"')[1].split("</tr>")[0]
        assert "白色 / L" in row and "199.00" in row
        assert '<td data-location="ST-SH01">3 / 3</td>' in row
        assert '<td data-location="WH-ONLINE">0 / 0</td>' in row
        assert "未参加活动" in page.text and "尚未上架" in page.text
        assert missing.status_code == 404

    def test_a_published_variant_shows_what_it_is_live_with(self, staff, web_server):
        code = make_product()
        with session_scope() as session:
            record_variant_listings(
                session,
                instance_id=str(uuid.uuid4()),
                title="纯棉圆领T恤 测试款",
                variants=[ListedVariant(sku=f"{code}-WHT-L", online_price=Decimal("199"), listed_stock=3)],
                shipping_template="全国包邮",
                dispatch_within_hours=48,
                actor="t",
            )
        other = make_product()
        with sign_in(web_server, "lin") as http:
            page, other_page = http.get(f"/ui/catalog/{code}"), http.get(f"/ui/catalog/{other}")
        listed = page.text.split(f'data-sku="{code}-WHT-L"')[1].split("</tr>")[0]
        unlisted = other_page.text.split(f'data-sku="{other}-WHT-L"')[1].split("</tr>")[0]
        assert "<td data-live>199.00 · 3 · 48h · 全国包邮</td>" in listed
        assert "<td data-live>—</td>" in unlisted
