"""The design archive (作品建档): approved creatives with their images, SKUs, campaign and recorded figures.

An archive step files a creative once per instance; the gallery lists those whose instance the
reader may see (the same rule that lets them download the images), newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.db.json_sql import json_array_has
from ecomflow.engine.db.models import Creative, ProcessInstance
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR, Principal

MAX_SHOWN = 200


@dataclass(frozen=True)
class GallerySearch:
    """What the gallery is filtered by; empty means any."""

    sku: str = ""
    campaign: str = ""
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 60


def archive_creative(
    session: Session,
    *,
    instance_id: str,
    process_key: str,
    title: str,
    attachment_ids: list[str],
    approved_by: str,
    approved_at: datetime,
    skus: list[str] | None = None,
    campaign: str | None = None,
    figures: dict[str, Any] | None = None,
    ad_creative_id: str | None = None,
) -> Creative:
    """File an approved creative in the archive, once per instance; a replay returns the first filing."""
    row = Creative(
        instance_id=instance_id,
        process_key=process_key,
        title=title[:200],
        campaign=(campaign or None) and campaign[:100],
        skus=sorted(set(skus or [])),
        attachment_ids=list(dict.fromkeys(attachment_ids)),
        figures=figures or {},
        ad_creative_id=ad_creative_id,
        approved_by=approved_by,
        approved_at=approved_at,
    )
    if insert_unless_exists(session, row):
        record_event(
            session,
            type="creative.archived",
            actor=SYSTEM_ACTOR,
            instance_id=instance_id,
            data={"title": row.title, "images": len(row.attachment_ids)},
        )
        return row
    return session.scalar(select(Creative).where(Creative.instance_id == instance_id))


def search_creatives(session: Session, *, principal: Principal, search: GallerySearch) -> list[Creative]:
    """Return the creatives the user may see that match the search, newest approval first."""
    query = (
        select(Creative)
        .join(ProcessInstance, ProcessInstance.id == Creative.instance_id)
        .where(access.instances_visible_to(principal))
        .order_by(Creative.approved_at.desc(), Creative.id.desc())
        .limit(min(max(search.limit, 1), MAX_SHOWN))
    )
    if search.sku:
        query = query.where(json_array_has(Creative.skus, search.sku.strip()))
    if search.campaign:
        query = query.where(Creative.campaign.contains(search.campaign.strip(), autoescape=True))
    if search.since is not None:
        query = query.where(Creative.approved_at >= search.since)
    if search.until is not None:
        query = query.where(Creative.approved_at < search.until)
    return list(session.scalars(query))
