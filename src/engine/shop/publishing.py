"""Publishing to the shop (the marketplace is outside ecomflow): once per instance, kind and ref."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import CatalogEntry
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR


class Channel(Protocol):
    """The sales channel ecomflow publishes to; must treat a repeated key as the same publication.

    Today a publication goes out as the platforms' bulk-upload files (shop/listing_files.py), which a person
    imports in 淘宝助理/千牛 or JD's merchant backend. An API connector implementing this protocol later would
    make, per platform:

    - Taobao/Tmall (TOP): `taobao.item.add` to create the 宝贝, `taobao.item.update` to change it,
      `taobao.item.sku.update` and `taobao.item.sku.price.update` for a SKU's price (the 宝贝-level
      `taobao.item.price.update` is retired), `taobao.item.quantity.update` for stock;
    - JD (JOS): `jingdong.ware.write.add` to create the ware, `jingdong.price.write.updateSkuJdPrice` for a
      SKU's price, `jingdong.stock.write.updateSkuStock` (or its successor `jingdong.ware.stock.sku.set`)
      for stock.

    The channel reference it returns would be the platform's item id (num_iid, wareId).
    """

    def publish(self, *, key: str, kind: str, ref: str, content: dict[str, Any]) -> str:
        """Publish and return the channel's reference."""
        ...


class CatalogChannel:
    """The embedded default: the catalog table is the shop window."""

    def publish(self, *, key: str, kind: str, ref: str, content: dict[str, Any]) -> str:
        return f"catalog:{key}"


def find_entry(session: Session, *, instance_id: str, kind: str, ref: str) -> CatalogEntry | None:
    """Return what an instance published under (kind, ref)."""
    query = select(CatalogEntry).where(
        CatalogEntry.instance_id == instance_id, CatalogEntry.kind == kind, CatalogEntry.ref == ref
    )
    return session.scalar(query)


def publish_once(
    session: Session, *, channel: Channel, instance_id: str, kind: str, ref: str, content: dict[str, Any]
) -> CatalogEntry:
    """Publish (kind, ref) for an instance exactly once and record it in the catalog."""
    existing = find_entry(session, instance_id=instance_id, kind=kind, ref=ref)
    if existing is not None:
        return existing
    channel_ref = channel.publish(key=f"{instance_id}:{kind}:{ref}", kind=kind, ref=ref, content=content)
    entry = CatalogEntry(kind=kind, ref=ref, instance_id=instance_id, content=content, channel_ref=channel_ref)
    if not insert_unless_exists(session, entry):
        return find_entry(session, instance_id=instance_id, kind=kind, ref=ref)
    record_event(
        session, type="catalog.published", actor=SYSTEM_ACTOR, instance_id=instance_id, data={"kind": kind, "ref": ref}
    )
    return entry
