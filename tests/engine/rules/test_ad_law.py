"""广告法极限词: every banned term found, and where."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from ecomflow.engine.rules.ad_law import TermHit, find_banned_terms, scan_form_text

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


class TestTermHit:
    def test_message_names_field_term_and_position(self) -> None:
        assert TermHit(field="title", term="最", position=3).message == "title contains banned term '最' at 3"


class TestFindBannedTerms:
    def test_clean_text_has_no_hits(self) -> None:
        assert find_banned_terms({"title": "夏季纯棉T恤 透气舒适"}, banned=BANNED) == []

    def test_hit_reports_field_term_and_character_index(self) -> None:
        assert find_banned_terms({"title": "夏季爆款最好穿"}, banned=BANNED) == [TermHit("title", "最", 4)]

    def test_every_occurrence_is_reported(self) -> None:
        hits = find_banned_terms({"title": "最轻最薄"}, banned=BANNED)
        assert hits == [TermHit("title", "最", 0), TermHit("title", "最", 2)]

    def test_a_term_inside_a_longer_term_is_reported_too(self) -> None:
        hits = find_banned_terms({"promo": "今日全网最低价"}, banned=BANNED)
        assert hits == [TermHit("promo", "全网最低", 2), TermHit("promo", "最", 4)]

    def test_same_position_follows_the_order_of_the_banned_list(self) -> None:
        hits = find_banned_terms({"t": "最低"}, banned=["最低", "最"])
        assert hits == [TermHit("t", "最低", 0), TermHit("t", "最", 0)]

    def test_ascii_terms_match_any_case(self) -> None:
        hits = find_banned_terms({"title": "The BEST shirt, best price"}, banned=["best"])
        assert hits == [TermHit("title", "best", 4), TermHit("title", "best", 16)]

    def test_percent_sign_is_matched_literally(self) -> None:
        assert find_banned_terms({"care": "100%好评 1000"}, banned=BANNED) == [TermHit("care", "100%", 0)]

    def test_list_values_are_named_by_index(self) -> None:
        hits = find_banned_terms({"selling_points": ["纯棉", "独家面料", "首选"]}, banned=BANNED)
        assert hits == [TermHit("selling_points[1]", "独家", 0), TermHit("selling_points[2]", "首选", 0)]

    def test_hits_are_ordered_by_field_then_position(self) -> None:
        hits = find_banned_terms({"title": "万能 顶级", "copy": "极品"}, banned=BANNED)
        assert [(h.field, h.position) for h in hits] == [("title", 0), ("title", 3), ("copy", 0)]

    def test_empty_banned_term_is_refused(self) -> None:
        with pytest.raises(ValueError, match="must not be empty"):
            find_banned_terms({"title": "x"}, banned=["最", ""])


class TestScanFormText:
    DATA: ClassVar[dict[str, Any]] = {
        "sku": "最-001",  # not customer-facing, so never scanned
        "title": "春季新款",
        "selling_points": ["纯棉", "唯一认证", "舒适"],
        "campaigns": [{"theme": "清凉一夏", "budget": 1000}, {"theme": "史无前例大促", "notes": "最"}],
    }

    def test_only_named_fields_are_scanned(self) -> None:
        assert scan_form_text(self.DATA, fields=["title"], banned=BANNED) == []

    def test_list_of_strings_is_scanned_item_by_item(self) -> None:
        hits = scan_form_text(self.DATA, fields=["selling_points"], banned=BANNED)
        assert hits == [TermHit("selling_points[1]", "唯一", 0)]

    def test_dotted_path_expands_lists_of_objects(self) -> None:
        hits = scan_form_text(self.DATA, fields=["campaigns.theme"], banned=BANNED)
        assert hits == [TermHit("campaigns[1].theme", "史无前例", 0)]

    def test_explicit_index_picks_one_item(self) -> None:
        assert scan_form_text(self.DATA, fields=["selling_points[0]"], banned=BANNED) == []
        hits = scan_form_text(self.DATA, fields=["campaigns[1].theme"], banned=BANNED)
        assert hits == [TermHit("campaigns[1].theme", "史无前例", 0)]

    def test_path_ending_on_objects_scans_all_their_strings(self) -> None:
        hits = scan_form_text(self.DATA, fields=["campaigns"], banned=BANNED)
        assert hits == [TermHit("campaigns[1].theme", "史无前例", 0), TermHit("campaigns[1].notes", "最", 0)]

    def test_missing_fields_are_skipped(self) -> None:
        fields = ["care_copy", "campaigns.copy", "selling_points[9]"]
        assert scan_form_text(self.DATA, fields=fields, banned=BANNED) == []

    def test_malformed_path_is_refused(self) -> None:
        with pytest.raises(ValueError, match="malformed field path"):
            scan_form_text(self.DATA, fields=["campaigns..theme"], banned=BANNED)
