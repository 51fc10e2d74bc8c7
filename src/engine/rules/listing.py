"""宝贝上传 listing check: title length, main images and advertising law at once (prices: shop/pricing.py)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecomflow.engine.rules.ad_law import scan_form_text


@dataclass(frozen=True)
class Finding:
    """One problem with a listing: the field it is in, the rule it breaks, and a sentence."""

    field: str
    rule: str
    message: str


def title_bytes(title: str) -> int:
    """Return the title's length as the marketplace counts it: wide characters count 2."""
    # W and F cover CJK ideographs, kana, hangul and full-width punctuation such as ，and 【】.
    return sum(2 if unicodedata.east_asian_width(char) in ("W", "F") else 1 for char in title)


def check_listing(
    *,
    title: str,
    main_images: Sequence[str],
    texts: Mapping[str, Any],
    title_max_bytes: int,
    min_main_images: int,
    banned: Sequence[str],
) -> list[Finding]:
    """Return every finding for a listing, so the author can fix them all in one round.

    ``texts`` holds the other customer-facing text (selling points, detail copy, ...); the title
    is always scanned for banned terms as well.
    """
    findings = []
    size = title_bytes(title)
    if size > title_max_bytes:
        findings.append(
            Finding(
                field="title",
                rule="title_length",
                message=f"title is {size} bytes; the limit is {title_max_bytes} (a CJK character counts 2)",
            )
        )
    images = [image for image in main_images if image and image.strip()]
    if len(images) < min_main_images:
        findings.append(
            Finding(
                field="main_images",
                rule="main_images",
                message=f"{len(images)} main images; at least {min_main_images} are required",
            )
        )
    # Merging keeps a "title" key in texts from being scanned twice.
    copy = {"title": title, **texts}
    findings.extend(
        Finding(field=hit.field, rule="ad_law", message=hit.message)
        for hit in scan_form_text(copy, fields=list(copy), banned=banned)
    )
    return findings
