"""The catalogue page: search products; a product with its variants, stock per location, listings, campaigns."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from ecomflow.api.web.deps import StaffPage
from ecomflow.api.web.rendering import render
from ecomflow.engine.db.models import CatalogEntry
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.shop import catalog
from ecomflow.engine.shop.pricing import campaigns_with
from ecomflow.engine.shop.stock import stock_of
from ecomflow.engine.shop.variant_listings import listings_of

router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE_SIZE = 50


@router.get("/catalog", response_class=HTMLResponse)
def catalog_page(
    page: StaffPage,
    q: str = Query("", max_length=100),
    after: str = Query("", max_length=64),
) -> HTMLResponse:
    """Search products by code, SKU or title, a page at a time."""
    with read_scope() as session:
        found = catalog.list_products(session, q=q or None, after=after or None, limit=PAGE_SIZE + 1)
        rows = [{"product": p, "variants": len(catalog.variants_of(session, p))} for p in found[:PAGE_SIZE]]
    more = rows[-1]["product"].code if len(found) > PAGE_SIZE else None
    return render("catalog.html", page, rows=rows, q=q, next_after=more, active_nav="catalog")


@router.get("/catalog/{code}", response_class=HTMLResponse)
def product_page(code: str, page: StaffPage) -> HTMLResponse:
    """Show a product: its variants with the list price, stock per location, its listings and campaigns."""
    with read_scope() as session:
        product = catalog.get_product(session, code)
        variants = catalog.variants_of(session, product)
        skus = [v.code for v in variants]
        stock = {v.code: stock_of(session, v.code) for v in variants}
        locations = [(loc.code, loc.name) for loc in catalog.list_locations(session)]
        listings = list(
            session.scalars(
                select(CatalogEntry)
                .where(CatalogEntry.kind == "listing", CatalogEntry.ref.in_([*skus, product.code]))
                .order_by(CatalogEntry.published_at.desc())
            )
        )
        campaigns = campaigns_with(session, skus)
        live_listings = listings_of(session, skus)
    cells = {sku: {row["location"]: row for row in rows} for sku, rows in stock.items()}
    return render(
        "catalog_product.html",
        page,
        product=product,
        variants=variants,
        locations=locations,
        cells=cells,
        listings=listings,
        live_listings=live_listings,
        campaigns=campaigns,
        active_nav="catalog",
    )
