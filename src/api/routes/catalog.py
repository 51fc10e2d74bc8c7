"""Master data: products (SPU) and their variants (SKU, the one list price); export as XLSX."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from ecomflow.api.catalog_schemas import ProductIn, ProductOut, ProductPage, ProductUpdate, VariantOut
from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.engine.db.models import Product
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.shop import catalog
from ecomflow.engine.shop.catalog_import import export_rows, write_table

router = APIRouter(prefix="/catalog", tags=["catalog"], responses=error_responses(401, 413, 422))
MAX_LIMIT = 200


def _present(session: Session, product: Product) -> ProductOut:
    return ProductOut(
        code=product.code,
        title=product.title,
        category=product.category,
        brand=product.brand,
        online_only=product.online_only,
        updated_at=product.updated_at,
        variants=[
            VariantOut(code=v.code, attributes=v.attributes or {}, barcode=v.barcode, list_price=v.list_price)
            for v in catalog.variants_of(session, product)
        ],
    )


def _engine_product(code: str, body: ProductIn | ProductUpdate) -> catalog.ProductIn:
    return catalog.ProductIn(
        code=code,
        title=body.title,
        category=body.category,
        brand=body.brand,
        online_only=body.online_only,
        variants=[
            catalog.VariantIn(code=v.code, list_price=v.list_price, colour=v.colour, size=v.size, barcode=v.barcode)
            for v in body.variants
        ],
    )


@router.get("/products", response_model=ProductPage)
def list_products(
    user: CurrentUser,
    q: Annotated[str | None, Query(max_length=100, description="part of a product code, SKU code or title")] = None,
    after: Annotated[str | None, Query(max_length=64, description="the next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> ProductPage:
    """List products by code, keyset-paged; search by code (product or SKU) or title."""
    with read_scope() as session:
        rows = catalog.list_products(session, q=q, after=after, limit=limit + 1)
        items = [_present(session, p) for p in rows[:limit]]
    return ProductPage(items=items, next_cursor=items[-1].code if len(rows) > limit else None)


@router.get("/products/{code}", response_model=ProductOut, responses=error_responses(404))
def get_product(code: str, user: CurrentUser) -> ProductOut:
    """Return a product with its variants."""
    with read_scope() as session:
        return _present(session, catalog.get_product(session, code))


@router.post("/products", response_model=ProductOut, status_code=201, responses=error_responses(403, 409))
def create_product(body: ProductIn, user: CurrentUser) -> ProductOut:
    """Create a product with its variants (product role and managers); audited."""
    with session_scope() as session:
        row = catalog.save_product(session, principal=user, product=_engine_product(body.code, body), create=True)
        return _present(session, row)


@router.put("/products/{code}", response_model=ProductOut, responses=error_responses(403, 404, 409))
def update_product(code: str, body: ProductUpdate, user: CurrentUser) -> ProductOut:
    """Update a product and its variants (variants left out are kept); product role and managers; audited."""
    with session_scope() as session:
        row = catalog.save_product(session, principal=user, product=_engine_product(code, body), create=False)
        return _present(session, row)


@router.get(
    "/export.xlsx",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}},
)
def export_xlsx(user: CurrentUser) -> StreamingResponse:
    """Export the whole catalogue in the import's columns (stock per location) as XLSX."""
    buffer = io.BytesIO()
    with read_scope() as session:
        header, rows = export_rows(session)
        write_table(buffer, header, rows)
    buffer.seek(0)
    return StreamingResponse(
        buffer,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="catalogue.xlsx"'},
    )
