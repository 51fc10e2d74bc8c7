"""Form data with real files for the steps that make pictures: each uploads generated images as the person would."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Staff
from tests.images import pdf, picture


def shades(version: int) -> tuple[int, int, int]:
    """Return a product colour per version, so each version's images are different bytes."""
    return (40 + 30 * version % 200, 90, 160)


def shoot_form(staff: Staff, version: int) -> dict[str, Any]:
    raw = [staff.upload(picture(1200, 900, product=shades(version + n)), f"raw-{version}-{n}.jpg") for n in range(2)]
    return {"raw_photos": raw, "shot_count": 120}


def retouch_form(staff: Staff, version: int) -> dict[str, Any]:
    main = staff.upload(picture(800, 800, product=shades(version)), f"main-{version}.jpg")
    final = staff.upload(picture(800, 1200, product=shades(version + 7)), f"detail-{version}.jpg")
    return {"main_images": [main], "final_photos": [final], "image_count": 24}


def module_design(staff: Staff, version: int) -> dict[str, Any]:
    return {
        "module_file": staff.upload(pdf(f"module v{version}"), f"module-v{version}.pdf"),
        "preview_images": [staff.upload(picture(790, 1600, product=shades(version)), f"module-v{version}.jpg")],
    }


def page_design_form(staff: Staff, version: int) -> dict[str, Any]:
    return {
        "design_file": staff.upload(pdf(f"page v{version}"), f"page-v{version}.pdf"),
        "previews": [staff.upload(picture(1920, 1080, product=shades(version)), f"page-v{version}.jpg")],
    }


def promo_design(staff: Staff, version: int) -> dict[str, Any]:
    banner = staff.upload(picture(1920, 600, product=shades(version)), f"banner-v{version}.jpg")
    ztc = staff.upload(picture(800, 800, product=shades(version + 3)), f"ztc-v{version}.jpg")
    return {"images": [{"placement": "home_banner", "image": banner}, {"placement": "ztc_main", "image": ztc}]}


def listing_images(staff: Staff, count: int) -> list[str]:
    return [staff.upload(picture(800, 800, product=shades(n)), f"main-{n}.jpg") for n in range(count)]


def detail_images(staff: Staff) -> list[str]:
    return [staff.upload(picture(790, 1600), "detail.jpg")]
