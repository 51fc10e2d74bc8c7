"""Task forms on the web: widgets for every field type, posted fields back to data, problems in words by their field."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from starlette.datastructures import FormData

from ecomflow.api.web.forms import build_form_view, path_label, problem_text, read_submission, spec_at
from ecomflow.api.web.i18n import Translator
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.forms import FieldProblem, compile_form, validate_form

pytestmark = pytest.mark.db_independent

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZH, EN = Translator("zh"), Translator("en")

# Every field type forms.py knows, nested the ways flows.yaml nests them.
EVERY_TYPE = compile_form(
    {
        "fields": {
            "title": {"type": "string", "required": True, "max_length": 20, "label": {"zh": "标题", "en": "Title"}},
            "notes": {"type": "text", "label": {"zh": "备注", "en": "Notes"}},
            "quantity": {"type": "integer", "min": 1, "max": 9, "label": {"zh": "数量", "en": "Quantity"}},
            "price": {"type": "number", "min": 0.01, "label": {"zh": "价格 (元)", "en": "Price (CNY)"}},
            "gift": {"type": "boolean", "label": {"zh": "赠品", "en": "Gift"}},
            "ship_on": {"type": "date", "label": {"zh": "发货日期", "en": "Ship on"}},
            "go_live_at": {"type": "datetime", "label": {"zh": "上线时间", "en": "Go live at"}},
            "channel": {"type": "enum", "values": ["tmall", "jd"], "label": {"zh": "渠道", "en": "Channel"}},
            "channels": {
                "type": "list",
                "items": {"type": "enum", "values": ["tmall", "jd"]},
                "label": {"zh": "渠道们", "en": "Channels"},
            },
            "points": {
                "type": "list",
                "required": True,
                "min_items": 2,
                "items": {"type": "string", "max_length": 50},
                "label": {"zh": "卖点", "en": "Selling points"},
            },
            "audience": {
                "type": "object",
                "required": True,
                "label": {"zh": "人群", "en": "Audience"},
                "fields": {
                    "age_min": {"type": "integer", "required": True, "label": {"zh": "最小年龄", "en": "Min age"}}
                },
            },
            "skus": {
                "type": "list",
                "label": {"zh": "商品", "en": "SKUs"},
                "items": {
                    "type": "object",
                    "fields": {
                        "sku": {"type": "string", "required": True, "label": {"zh": "SKU", "en": "SKU"}},
                        "sizes": {
                            "type": "list",
                            "required": True,
                            "min_items": 1,
                            "label": {"zh": "尺寸", "en": "Sizes"},
                            "items": {"type": "string", "pattern": "^[0-9]+x[0-9]+$"},
                        },
                    },
                },
            },
        }
    },
    where="test",
)


def _posted(*pairs: tuple[str, str]) -> FormData:
    return FormData(list(pairs))


class TestReadSubmission:
    def test_every_field_type_becomes_form_data(self):
        data = read_submission(
            EVERY_TYPE,
            _posted(
                ("title", "  冬季上新 "),
                ("notes", "第一行\r\n第二行"),
                ("quantity", "3"),
                ("price", "12.5"),
                ("gift", "false"),
                ("gift", "true"),
                ("ship_on", "2026-12-01"),
                ("go_live_at", "2026-12-01T20:00"),
                ("channel", "jd"),
                ("channels", "tmall"),
                ("channels", "jd"),
                ("points[0]", "保暖"),
                ("points[1]", "透气"),
                ("audience.age_min", "18"),
                ("skus[0].sku", "TEE-1"),
                ("skus[0].sizes[0]", "800x800"),
            ),
            zone=SHANGHAI,
        )
        assert data == {
            "title": "冬季上新",
            "notes": "第一行\n第二行",
            "quantity": 3,
            "price": 12.5,
            "gift": True,
            "ship_on": "2026-12-01",
            "go_live_at": "2026-12-01T20:00:00+08:00",
            "channel": "jd",
            "channels": ["tmall", "jd"],
            "points": ["保暖", "透气"],
            "audience": {"age_min": 18},
            "skus": [{"sku": "TEE-1", "sizes": ["800x800"]}],
        }
        assert validate_form(EVERY_TYPE, data) == []

    def test_empty_fields_are_left_out_and_an_unchecked_box_is_false(self):
        data = read_submission(EVERY_TYPE, _posted(("title", " "), ("gift", "false"), ("quantity", "")), zone=SHANGHAI)
        assert data == {"gift": False, "audience": {}}

    def test_rows_are_renumbered_and_empty_rows_dropped(self):
        data = read_submission(
            EVERY_TYPE,
            _posted(
                ("points[3]", "甲"),
                ("points[7]", ""),
                ("points[12]", "乙"),
                ("skus[5].sku", ""),
                ("skus[5].sizes[0]", ""),
                ("skus[9].sku", "B"),
                ("skus[9].sizes[4]", "1x1"),
            ),
            zone=SHANGHAI,
        )
        assert data["points"] == ["甲", "乙"]
        assert data["skus"] == [{"sku": "B", "sizes": ["1x1"]}]

    @pytest.mark.parametrize("typed", ["abc", "1e999", "nan", "１２"])
    def test_text_that_is_no_number_stays_text_so_the_engine_names_the_field(self, typed):
        data = read_submission(EVERY_TYPE, _posted(("price", typed), ("quantity", "2.5")), zone=SHANGHAI)
        problems = {(p.field, p.rule) for p in validate_form(EVERY_TYPE, data)}
        assert ("quantity", "type") in problems
        if typed != "１２":  # full-width digits are digits to Python: 12
            assert ("price", "type") in problems


class TestFormView:
    def test_each_problem_sits_on_its_field_in_the_users_language(self):
        data = {"title": "x" * 30, "points": ["a"], "skus": [{"sku": "A", "sizes": ["big"]}], "audience": {}}
        problems = validate_form(EVERY_TYPE, data)
        view = build_form_view(EVERY_TYPE, values=data, problems=problems, t=ZH, zone=SHANGHAI, approval=False)
        widgets = {w.name: w for w in view.widgets}
        assert widgets["title"].errors == ["最多 20 个字。"]
        assert widgets["points"].errors == ["至少填写 2 项。"]
        assert widgets["audience"].children[0].errors == ["此项必填。"]
        size = widgets["skus"].rows[0].children[1].rows[0]
        assert size.name == "skus[0].sizes[0]" and size.errors == ["格式不符合要求（^[0-9]+x[0-9]+$）。"]
        assert (
            "f-skus-0--sizes-0-",
            "商品 · 第 1 行 · 尺寸 · 第 1 行：格式不符合要求（^[0-9]+x[0-9]+$）。",
        ) in view.summary

    def test_a_required_list_starts_with_the_rows_it_needs_and_a_blank_row_to_copy(self):
        view = build_form_view(EVERY_TYPE, values={}, problems=[], t=EN, zone=SHANGHAI, approval=False)
        points = next(w for w in view.widgets if w.name == "points")
        skus = next(w for w in view.widgets if w.name == "skus")
        assert [row.name for row in points.rows] == ["points[0]", "points[1]"]
        assert skus.rows == [] and skus.blank_row.name == "skus[__I0__]"
        # The blank row's own list keeps a placeholder of the next level, replaced only when that row adds one.
        inner = skus.blank_row.children[1]
        assert inner.rows[0].name == "skus[__I0__].sizes[0]" and inner.blank_row.name == "skus[__I0__].sizes[__I1__]"

    def test_a_stored_date_time_shows_in_the_teams_wall_time(self):
        view = build_form_view(
            EVERY_TYPE,
            values={"go_live_at": "2026-12-01T12:00:00+00:00"},
            problems=[],
            t=ZH,
            zone=SHANGHAI,
            approval=False,
        )
        assert next(w for w in view.widgets if w.name == "go_live_at").value == "2026-12-01T20:00"

    def test_an_approval_has_buttons_for_its_decision_and_a_comment_needed_to_reject(self):
        form = get_definitions().process("returns_exchange").step("cs_review").form
        problems = validate_form(form, {"decision": "reject"})
        view = build_form_view(
            form, values={"decision": "reject"}, problems=problems, t=EN, zone=SHANGHAI, approval=True
        )
        assert [w.name for w in view.widgets] == ["comment"]
        assert view.widgets[0].errors == ["A comment is required to reject."]

    def test_a_byte_limited_title_says_its_limit_and_its_problem_in_bytes(self):
        form = get_definitions().process("listing_upload").step("prepare_listing").form
        data = {"title": "纯" * 31}
        problems = [p for p in validate_form(form, data) if p.field == "title"]
        view = build_form_view(form, values=data, problems=problems, t=ZH, zone=SHANGHAI, approval=False)
        title = next(w for w in view.widgets if w.name == "title")
        assert title.hint == "最多 60 字节（汉字算 2 字节）"
        assert title.limits["max_bytes"] == 60
        assert title.errors == ["最多 60 字节（汉字算 2 字节）。"]
        en = build_form_view(form, values=data, problems=problems, t=EN, zone=SHANGHAI, approval=False)
        assert next(w for w in en.widgets if w.name == "title").errors == [
            "Must be at most 60 bytes (a CJK character counts 2)."
        ]


class TestProblemText:
    def test_paths_and_rules_are_named_in_both_languages(self):
        assert spec_at(EVERY_TYPE, "skus[3].sizes[1]").type == "string"
        assert spec_at(EVERY_TYPE, "nothing.here") is None
        assert path_label(EVERY_TYPE, "skus[3].sku", ZH) == "商品 · 第 4 行 · SKU"
        assert path_label(EVERY_TYPE, "skus[3].sku", EN) == "SKUs · row 4 · SKU"
        problem = FieldProblem("quantity", "min", "quantity must be at least 1")
        assert problem_text(EVERY_TYPE, problem, ZH) == "不能小于 1。"
        assert problem_text(EVERY_TYPE, problem, EN) == "Must be at least 1."

    def test_an_unknown_rule_keeps_the_engines_sentence(self):
        problem = FieldProblem("title", "dependentRequired", "title breaks the dependentRequired rule")
        assert problem_text(EVERY_TYPE, problem, ZH) == "title breaks the dependentRequired rule"
