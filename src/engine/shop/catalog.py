"""Master data: products (SPU), their variants (SKU) with the one list price, and stock locations.

Create and update are for the product role and the managers (engine/access.py); every change is audited
in its transaction. Input is checked field by field: a bad value is a ValidationFailed naming field and rule.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ecomflow.engine.access import check_may_edit_catalog
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import Location, Product, Variant
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import Conflict, NotFound, ValidationFailed
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM, Principal
from ecomflow.engine.shop.stock import balance, move

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
LOCATION_KINDS = ("warehouse", "store")
MAX_PRICE = Decimal("999999999999.99")


@dataclass
class VariantIn:
    """A variant as submitted: code, attributes, barcode and list price."""

    code: str
    list_price: Any
    colour: str = ""
    size: str = ""
    barcode: str | None = None


@dataclass
class ProductIn:
    """A product as submitted, with its variants."""

    code: str
    title: str
    category: str
    brand: str = ""
    online_only: bool = False
    variants: list[VariantIn] = field(default_factory=list)


def parse_price(value: Any) -> Decimal:
    """Return a list price as a Decimal with cents; ValueError saying why it is not one."""
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"list price {value!r} is not a number") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(f"list price must be a positive number, got {value!r}")
    if price > MAX_PRICE or price != price.quantize(Decimal("0.01")):
        raise ValueError(f"list price {value!r} has more than two decimals or is too large")
    return price.quantize(Decimal("0.01"))


def product_problems(product: ProductIn, *, prefix: str = "") -> list[FieldProblem]:
    """Return every rule the product and its variants break (empty when it is good)."""
    problems = []

    def bad(name: str, rule: str, message: str) -> None:
        problems.append(FieldProblem(field=f"{prefix}{name}", rule=rule, message=message))

    if not CODE.match(product.code or ""):
        bad("code", "pattern", f"product code {product.code!r}: letters, digits, . _ - and at most 64 characters")
    if not (product.title or "").strip() or len(product.title) > 200:
        bad("title", "length", "the title is 1 to 200 characters")
    if not (product.category or "").strip() or len(product.category) > 64:
        bad("category", "length", "the category is 1 to 64 characters")
    if len(product.brand or "") > 64:
        bad("brand", "length", "the brand is at most 64 characters")
    if not product.variants:
        bad("variants", "min_items", "a product has at least one variant")
    seen: set[str] = set()
    for index, variant in enumerate(product.variants):
        at = f"variants[{index}]."
        if not CODE.match(variant.code or ""):
            bad(f"{at}code", "pattern", f"SKU code {variant.code!r}: letters, digits, . _ - and at most 64 characters")
        elif variant.code in seen:
            bad(f"{at}code", "unique", f"SKU {variant.code} appears twice")
        seen.add(variant.code)
        try:
            parse_price(variant.list_price)
        except ValueError as exc:
            bad(f"{at}list_price", "positive_price", str(exc))
        if variant.barcode and not re.fullmatch(r"[0-9A-Za-z\-]{1,64}", variant.barcode):
            bad(f"{at}barcode", "pattern", f"barcode {variant.barcode!r}: letters, digits and - only")
        if len(variant.colour or "") > 32 or len(variant.size or "") > 32:
            bad(f"{at}attributes", "length", "colour and size are at most 32 characters each")
    return problems


def save_product(session: Session, *, principal: Principal, product: ProductIn, create: bool) -> Product:
    """Create (create=True) or update a product and its variants; audited. Variants left out are kept.

    Refused: a SKU code of another product, creating a code that exists, updating one that does not.
    """
    check_may_edit_catalog(principal)
    problems = product_problems(product)
    if problems:
        raise ValidationFailed(f"product {product.code!r} is invalid", problems=problems)
    row = session.scalar(select(Product).where(Product.code == product.code))
    if create and row is not None:
        raise Conflict(f"product {product.code} exists already; update it instead", product=product.code)
    if not create and row is None:
        raise NotFound(f"no product {product.code} in the catalogue", product=product.code)
    now = utcnow()
    if row is None:
        row = Product(code=product.code, created_at=now)
        session.add(row)
    row.title, row.category, row.brand = product.title.strip(), product.category.strip(), product.brand or ""
    row.online_only, row.updated_at = bool(product.online_only), now
    session.flush()
    existing = {
        v.code: v for v in session.scalars(select(Variant).where(Variant.code.in_([v.code for v in product.variants])))
    }
    for variant in product.variants:
        held = existing.get(variant.code)
        if held is not None and held.product_id != row.id:
            raise Conflict(f"SKU {variant.code} belongs to another product", sku=variant.code)
        if held is None:
            held = Variant(code=variant.code, product_id=row.id, created_at=now)
            session.add(held)
        held.attributes = _attributes(variant)
        held.barcode = variant.barcode or None
        held.list_price = parse_price(variant.list_price)
        held.updated_at = now
    session.flush()
    record_event(
        session,
        type="catalog.product_created" if create else "catalog.product_updated",
        actor=principal.name,
        data={
            "product": product.code,
            "variants": [{"sku": v.code, "list_price": str(parse_price(v.list_price))} for v in product.variants],
        },
    )
    return row


def _attributes(variant: VariantIn) -> dict[str, str]:
    return {key: value for key, value in (("colour", variant.colour or ""), ("size", variant.size or "")) if value}


def get_product(session: Session, code: str) -> Product:
    """Return the product with this code, or raise NotFound."""
    row = session.scalar(select(Product).where(Product.code == code))
    if row is None:
        raise NotFound(f"no product {code} in the catalogue", product=code)
    return row


def variants_of(session: Session, product: Product) -> list[Variant]:
    """Return the product's variants by code."""
    return list(session.scalars(select(Variant).where(Variant.product_id == product.id).order_by(Variant.code)))


def list_products(
    session: Session, *, q: str | None = None, after: str | None = None, limit: int = 50
) -> list[Product]:
    """Return products by code, keyset-paged after a code; q matches product code, SKU code or title (substring)."""
    query = select(Product)
    if q:
        pattern = f"%{q.strip()}%"
        with_sku = select(Variant.product_id).where(Variant.code.ilike(pattern))
        query = query.where(or_(Product.code.ilike(pattern), Product.title.ilike(pattern), Product.id.in_(with_sku)))
    if after:
        query = query.where(Product.code > after)
    return list(session.scalars(query.order_by(Product.code).limit(limit)))


@dataclass(frozen=True)
class PricedVariant:
    """What the price rule needs of a SKU: its list price and whether its product is sold only online."""

    sku: str
    product: str
    title: str
    list_price: Decimal
    online_only: bool


def priced_variants(session: Session, skus: Iterable[str]) -> dict[str, PricedVariant]:
    """Return the catalogue's list price and online-only flag of each known SKU among the codes."""
    rows = session.execute(
        select(Variant.code, Product.code, Product.title, Variant.list_price, Product.online_only)
        .join(Product, Product.id == Variant.product_id)
        .where(Variant.code.in_(list(skus)))
    )
    return {
        r[0]: PricedVariant(sku=r[0], product=r[1], title=r[2], list_price=Decimal(r[3]), online_only=r[4])
        for r in rows
    }


def save_location(session: Session, *, code: str, name: str, kind: str, actor: str) -> Location:
    """Create or rename a stock location (the online warehouse or a store); audited."""
    if not CODE.match(code or "") or len(code) > 32:
        raise ValidationFailed(
            "bad location code", problems=[FieldProblem("code", "pattern", f"location code {code!r} is invalid")]
        )
    if kind not in LOCATION_KINDS:
        raise ValidationFailed(
            "bad location kind", problems=[FieldProblem("kind", "enum", f"kind must be one of {LOCATION_KINDS}")]
        )
    row = session.get(Location, code)
    if row is None:
        row = Location(code=code, created_at=utcnow())
        session.add(row)
    row.name, row.kind = name or code, kind
    session.flush()
    record_event(session, type="catalog.location_saved", actor=actor, data={"location": code, "kind": kind})
    return row


def list_locations(session: Session) -> list[Location]:
    """Return every stock location, warehouses first."""
    return list(session.scalars(select(Location).order_by(Location.kind.desc(), Location.code)))


def seed_sku(
    session: Session,
    *,
    sku: str,
    title: str,
    list_price: Decimal | int | str,
    stock: int = 0,
    online_only: bool = False,
    location: str = "WH-ONLINE",
    category: str = "normal",
) -> Variant:
    """Put one SKU (its own one-variant product) into the catalogue with opening stock; for tests, benches, demos.

    Idempotent: seeding again updates the product and price and sets the stock by an adjustment.
    """
    if session.get(Location, location) is None:
        kind = "warehouse" if location.startswith("WH") else "store"
        save_location(session, code=location, name=location, kind=kind, actor=SYSTEM.name)
    held = session.scalar(select(Variant).where(Variant.code == sku))
    product = ProductIn(
        code=sku,
        title=title,
        category=category,
        online_only=online_only,
        variants=[VariantIn(code=sku, list_price=list_price)],
    )
    if held is not None:
        product.code = session.get(Product, held.product_id).code  # type: ignore[union-attr]
    save_product(session, principal=SYSTEM, product=product, create=held is None)
    have = balance(session, sku=sku, location=location)["on_hand"]
    if stock != have:
        move(
            session,
            kind="adjust",
            sku=sku,
            location=location,
            quantity=stock - have,
            business_key=f"seed/{sku}@{location}/{uuid.uuid4().hex}",
            actor="system",
            reason="seeded stock",
        )
    return session.scalar(select(Variant).where(Variant.code == sku))  # type: ignore[return-value]
