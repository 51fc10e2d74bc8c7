"""宝贝上传 listing check: all findings at once."""

from __future__ import annotations

from typing import Any

import pytest

from ecomflow.engine.rules.listing import Finding, check_listing, title_bytes

pytestmark = pytest.mark.db_independent

BANNED = [
    "最",
    "第一",
    "唯一",
    "国家级",
    "世界级",
    "顶级",
    "极品",
    "独家",
    "首个",
    "首选",
    "全网最低",
    "史无前例",
    "万能",
    "100%",
]
IMAGES = [f"img/{n}.jpg" for n in range(5)]


def _check(**overrides: Any) -> list[Finding]:
    args: dict[str, Any] = {
        "title": "夏季纯棉T恤男短袖",
        "main_images": IMAGES,
        "texts": {"selling_points": ["纯棉", "透气", "宽松"], "detail": "亲肤面料"},
        "title_max_bytes": 60,
        "min_main_images": 5,
        "banned": BANNED,
    }
    return check_listing(**{**args, **overrides})


class TestTitleBytes:
    @pytest.mark.parametrize(
        ("title", "size"),
        [("", 0), ("T-shirt", 7), ("纯棉", 4), ("纯棉T恤", 7), ("【包邮】", 8), ("，！", 4), ("ＡＢ", 4), ("ｱ", 1)],
    )
    def test_wide_characters_count_two(self, title: str, size: int) -> None:
        assert title_bytes(title) == size


class TestCheckListing:
    def test_good_listing_has_no_findings(self) -> None:
        assert _check() == []

    def test_title_of_exactly_sixty_bytes_passes(self) -> None:
        assert _check(title="好" * 30) == []

    def test_title_over_the_limit_gives_bytes_and_limit(self) -> None:
        assert _check(title="好" * 30 + "A") == [
            Finding("title", "title_length", "title is 61 bytes; the limit is 60 (a CJK character counts 2)"),
        ]

    def test_too_few_main_images(self) -> None:
        assert _check(main_images=[*IMAGES[:3], ""]) == [
            Finding("main_images", "main_images", "3 main images; at least 5 are required"),
        ]

    def test_banned_terms_in_title_and_texts(self) -> None:
        findings = _check(title="最新款T恤", texts={"selling_points": ["纯棉", "独家面料"]})
        assert findings == [
            Finding("title", "ad_law", "title contains banned term '最' at 0"),
            Finding("selling_points[1]", "ad_law", "selling_points[1] contains banned term '独家' at 0"),
        ]

    def test_title_in_texts_is_not_reported_twice(self) -> None:
        findings = _check(title="最新款", texts={"title": "最新款"})
        assert findings == [Finding("title", "ad_law", "title contains banned term '最' at 0")]

    def test_every_finding_is_reported_at_once(self) -> None:
        findings = _check(
            title="全网最低价" * 7,
            main_images=IMAGES[:1],
            texts={"detail": "100%纯棉"},
        )
        # Prices are judged against master data by shop/pricing.py, not here.
        assert [f.rule for f in findings] == ["title_length", "main_images"] + ["ad_law"] * 15
        assert Finding("detail", "ad_law", "detail contains banned term '100%' at 0") in findings
