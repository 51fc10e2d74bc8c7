"""The design archive (作品建档) as a gallery: approved creatives by SKU, campaign and date, with their figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ecomflow.api.web.deps import Page, StaffPage
from ecomflow.api.web.file_views import FileView, file_views
from ecomflow.api.web.labels import process_title
from ecomflow.api.web.rendering import render
from ecomflow.engine.db.models import Creative
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.files.design_archive import GallerySearch, search_creatives

router = APIRouter(prefix="/ui", include_in_schema=False)
MAX_TEXT = 100


@dataclass(frozen=True)
class CreativeCard:
    """One approved creative on the gallery page."""

    creative: Creative
    process: str
    images: list[FileView]


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _search(page: Page) -> tuple[GallerySearch, dict[str, str]]:
    """Read the search from the query: SKU, campaign (part of its name), approved from / to (days, inclusive)."""
    query = page.request.query_params
    shown = {key: query.get(key, "").strip()[:MAX_TEXT] for key in ("sku", "campaign", "from", "to")}
    start, end = _day(shown["from"]), _day(shown["to"])
    zone = page.zone
    return (
        GallerySearch(
            sku=shown["sku"],
            campaign=shown["campaign"],
            since=datetime.combine(start, time(), zone) if start else None,
            until=datetime.combine(end + timedelta(days=1), time(), zone) if end else None,
        ),
        shown,
    )


@router.get("/gallery", response_class=HTMLResponse)
def gallery(page: StaffPage) -> HTMLResponse:
    """Show the approved creatives the user may see, newest first, filtered by the search."""
    search, shown = _search(page)
    with read_scope() as session:
        creatives = search_creatives(session, principal=page.user, search=search)
        views = file_views(session, (i for c in creatives for i in c.attachment_ids))
    cards = [
        CreativeCard(
            creative=c,
            process=process_title(page.definitions, page.t, c.process_key),
            images=[views[i] for i in c.attachment_ids if i in views],
        )
        for c in creatives
    ]
    return render("gallery.html", page, cards=cards, search=shown, active_nav="gallery")
