"""Request and response bodies of master data (/catalog) and the stock ledger (/stock)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, description="the SKU code")
    list_price: Decimal = Field(gt=0, max_digits=14, decimal_places=2, description="the one price, online and offline")
    colour: str = Field("", max_length=32)
    size: str = Field("", max_length=32)
    barcode: str | None = Field(None, max_length=64)


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, description="the product (SPU) code")
    title: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=64)
    brand: str = Field("", max_length=64)
    online_only: bool = Field(False, description="sold only online: outside the channel price rule")
    variants: list[VariantIn] = Field(min_length=1, max_length=500)


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=64)
    brand: str = Field("", max_length=64)
    online_only: bool = False
    variants: list[VariantIn] = Field(min_length=1, max_length=500)


class VariantOut(BaseModel):
    code: str
    attributes: dict[str, str]
    barcode: str | None
    list_price: Decimal


class ProductOut(BaseModel):
    code: str
    title: str
    category: str
    brand: str
    online_only: bool
    updated_at: datetime
    variants: list[VariantOut]


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None = Field(description="pass as `after` for the next page; null on the last")


class StockAtLocation(BaseModel):
    location: str
    location_name: str
    location_kind: str
    on_hand: int
    reserved: int
    available: int


class StockOut(BaseModel):
    sku: str
    locations: list[StockAtLocation]
    on_hand: int
    available: int


class MovementOut(BaseModel):
    id: int
    kind: str
    sku: str
    location: str
    quantity: int
    business_key: str
    reason: str | None
    instance_id: str | None
    actor: str
    created_at: datetime


class MovementPage(BaseModel):
    items: list[MovementOut]
    next_cursor: int | None


class AdjustIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location: str = Field(min_length=1, max_length=32)
    quantity: int = Field(description="signed: + found, − lost or damaged")
    reason: str = Field(min_length=1, max_length=500)
    business_key: str = Field(min_length=1, max_length=200, description="the same key again moves nothing")
