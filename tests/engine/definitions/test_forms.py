"""Forms: compiling flows.yaml form specs to JSON Schema and validating submitted data."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ecomflow.engine.definitions.forms import FieldProblem, FormSpec, Label, compile_form, validate_form
from ecomflow.engine.errors import FormDefinitionError

pytestmark = pytest.mark.db_independent


def label(zh: str = "名称", en: str = "Name") -> dict[str, str]:
    return {"zh": zh, "en": en}


def make_form(*, approval: bool = False, **fields: dict[str, Any]) -> FormSpec:
    """Compile a form from keyword field specs, adding a label where a spec has none."""
    raw = {name: {"label": label(name, name), **spec} for name, spec in fields.items()}
    return compile_form({"fields": raw}, where="test.form", approval=approval)


def order_form() -> FormSpec:
    return make_form(
        order_id={"type": "string", "required": True, "pattern": "^[A-Za-z0-9-]{4,40}$"},
        quantity={"type": "integer", "min": 1, "max": 10},
        amount={"type": "number", "min": 0.01, "required": True},
        delivered_on={"type": "date"},
        ship_at={"type": "datetime"},
        gift={"type": "boolean"},
        condition={"type": "enum", "values": ["ok", "damaged"], "required": True},
        notes={"type": "text"},
        tags={"type": "list", "items": {"type": "string", "max_length": 5}, "min_items": 1, "max_items": 2},
        items={
            "type": "list",
            "items": {
                "type": "object",
                "fields": {
                    "sku": {"type": "string", "required": True, "label": label("SKU", "SKU")},
                    "qty": {"type": "integer", "min": 1, "label": label("数量", "Quantity")},
                },
            },
        },
        address={"type": "object", "fields": {"city": {"type": "string", "required": True, "label": label()}}},
    )


def definition_problems(raw: Any, *, approval: bool = False) -> list[str]:
    with pytest.raises(FormDefinitionError) as caught:
        compile_form(raw, where="processes.demo.steps.inspect.form", approval=approval)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def rules(problems: list[FieldProblem]) -> list[tuple[str, str]]:
    return [(p.field, p.rule) for p in problems]


class TestCompileForm:
    def test_schema_is_a_closed_object_with_required_fields(self):
        schema = order_form().json_schema
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert schema["required"] == ["order_id", "amount", "condition"]
        assert list(schema["properties"]) == [
            "order_id",
            "quantity",
            "amount",
            "delivered_on",
            "ship_at",
            "gift",
            "condition",
            "notes",
            "tags",
            "items",
            "address",
        ]
        Draft202012Validator.check_schema(schema)

    def test_field_types_map_to_json_schema(self):
        props = order_form().json_schema["properties"]
        assert props["order_id"]["type"] == "string" and props["order_id"]["pattern"] == "^[A-Za-z0-9-]{4,40}$"
        assert props["quantity"] == {**props["quantity"], "type": "integer", "minimum": 1, "maximum": 10}
        assert props["amount"]["type"] == "number" and props["amount"]["minimum"] == 0.01
        assert props["delivered_on"]["type"] == "string" and props["delivered_on"]["format"] == "date"
        assert props["ship_at"]["format"] == "date-time"
        assert props["gift"]["type"] == "boolean"
        assert props["condition"]["enum"] == ["ok", "damaged"] and props["condition"]["type"] == "string"
        assert props["tags"]["type"] == "array" and props["tags"]["minItems"] == 1 and props["tags"]["maxItems"] == 2
        assert props["tags"]["items"]["maxLength"] == 5

    def test_objects_inside_lists_are_closed_too(self):
        props = order_form().json_schema["properties"]
        item = props["items"]["items"]
        assert item["type"] == "object" and item["additionalProperties"] is False and item["required"] == ["sku"]
        address = props["address"]
        assert address["additionalProperties"] is False and address["required"] == ["city"]

    def test_string_and_text_get_default_max_lengths(self):
        props = order_form().json_schema["properties"]
        assert props["order_id"]["maxLength"] == 200
        assert props["notes"]["maxLength"] == 5000

    def test_required_strings_must_not_be_empty(self):
        props = order_form().json_schema["properties"]
        assert props["order_id"]["minLength"] == 1
        assert "minLength" not in props["notes"]

    def test_labels_become_title_and_x_label(self):
        form = compile_form({"fields": {"sku": {"type": "string", "label": label("商品编码", "SKU")}}}, where="f")
        schema = form.json_schema["properties"]["sku"]
        assert schema["title"] == "商品编码"
        assert schema["x-label"] == {"zh": "商品编码", "en": "SKU"}
        assert form.fields[0].label == Label(zh="商品编码", en="SKU")

    def test_field_specs_keep_constraints_read_only(self):
        form = order_form()
        condition = form.get_field("condition")
        assert condition.type == "enum" and condition.required is True
        assert condition.attrs["values"] == ("ok", "damaged")
        with pytest.raises(TypeError):
            condition.attrs["values"] = ("x",)  # type: ignore[index]
        assert form.get_field("items").items.fields[0].name == "sku"
        with pytest.raises(KeyError, match="no field 'nope'"):
            form.get_field("nope")

    def test_missing_form_compiles_to_no_fields(self):
        form = compile_form(None, where="f")
        assert form.fields == ()
        assert form.json_schema["properties"] == {} and form.json_schema["required"] == []

    def test_approval_form_adds_decision_and_comment(self):
        form = make_form(approval=True, deduction={"type": "number", "min": 0})
        assert form.field_names == ("decision", "comment", "deduction")
        schema = form.json_schema
        assert schema["properties"]["decision"]["enum"] == ["approve", "reject"]
        assert schema["required"] == ["decision"]
        assert schema["if"] == {"properties": {"decision": {"const": "reject"}}, "required": ["decision"]}
        assert schema["then"]["required"] == ["comment"]

    def test_approval_form_may_not_redefine_decision(self):
        problems = definition_problems({"fields": {"decision": {"type": "text", "label": label()}}}, approval=True)
        assert problems == [
            "processes.demo.steps.inspect.form.fields.decision: an approval form defines decision itself; "
            "choose another name"
        ]

    def test_unknown_type_names_the_field(self):
        problems = definition_problems({"fields": {"condition": {"type": "enumm", "label": label()}}})
        assert problems == [
            "processes.demo.steps.inspect.form.fields.condition: unknown type 'enumm' (expected one of string, "
            "text, integer, number, boolean, date, datetime, enum, list, object, file, image)"
        ]

    def test_every_bad_field_is_reported(self):
        problems = definition_problems(
            {
                "fields": {
                    "a": {"type": "enum", "label": label()},
                    "b": {"type": "enum", "values": [True, False], "label": label()},
                    "c": {"type": "string", "min_length": 5, "max_length": 2, "label": label()},
                    "d": {"type": "string", "pattern": "([", "label": label()},
                    "e": {"type": "integer", "maxlength": 3, "label": label()},
                    "f": {"type": "string"},
                    "g": {"type": "list", "label": label()},
                    "h": {
                        "type": "list",
                        "label": label(),
                        "items": {"type": "object", "fields": {"x": {"type": "nope"}}},
                    },
                    "Bad-Name": {"type": "string", "label": label()},
                    "i": {"type": "integer", "min": "1", "label": label()},
                    "j": {"type": "string", "required": "yes", "label": label()},
                }
            }
        )
        where = "processes.demo.steps.inspect.form.fields"
        expected_starts = [
            f"{where}.a.values: an enum needs a non-empty list of values",
            f"{where}.b.values: values must be non-empty strings, got True, False (quote yes/no/on/off in YAML)",
            f"{where}.c: min_length (5) is greater than max_length (2)",
            f"{where}.d.pattern: not a valid regular expression",
            f"{where}.e: unknown key 'maxlength' for integer fields",
            f"{where}.f.label: expected a mapping with zh and en labels",
            f"{where}.g: a list field needs 'items'",
            f"{where}.h.items.fields.x: unknown type 'nope'",
            f"{where}.Bad-Name: field names are lower_snake_case",
            f"{where}.i.min: expected an integer, got str '1'",
            f"{where}.j.required: expected true or false",
        ]
        assert len(problems) == len(expected_starts)
        for problem, start in zip(problems, expected_starts, strict=True):
            assert problem.startswith(start), (problem, start)

    def test_labels_need_both_languages(self):
        problems = definition_problems({"fields": {"x": {"type": "string", "label": {"zh": "名"}}}})
        assert problems == ["processes.demo.steps.inspect.form.fields.x.label.en: a non-empty en label is required"]

    def test_object_needs_fields(self):
        problems = definition_problems({"fields": {"x": {"type": "object", "label": label(), "fields": {}}}})
        assert problems == ["processes.demo.steps.inspect.form.fields.x: an object field needs at least one field"]

    def test_form_must_be_a_mapping_of_fields(self):
        assert definition_problems(["x"]) == [
            "processes.demo.steps.inspect.form: expected a mapping with 'fields', got list"
        ]
        assert definition_problems({"fields": {}, "extra": 1}) == [
            "processes.demo.steps.inspect.form: unknown key 'extra' (allowed: fields)"
        ]


class TestValidateForm:
    def good_order(self, **overrides: Any) -> dict[str, Any]:
        return {
            "order_id": "TB-2024-0001",
            "quantity": 2,
            "amount": 99.5,
            "delivered_on": "2025-05-01",
            "ship_at": "2025-05-01T20:00:00+08:00",
            "gift": False,
            "condition": "ok",
            "notes": "fine",
            "tags": ["a"],
            "items": [{"sku": "SKU1", "qty": 1}],
            "address": {"city": "杭州"},
            **overrides,
        }

    def test_valid_data_has_no_problems(self):
        assert validate_form(order_form(), self.good_order()) == []
        assert validate_form(order_form(), {"order_id": "ABCD", "amount": 1, "condition": "damaged"}) == []

    def test_missing_required_fields_are_each_reported(self):
        problems = validate_form(order_form(), {})
        assert rules(problems) == [("amount", "required"), ("condition", "required"), ("order_id", "required")]
        assert problems[0].message == "amount is required"

    def test_every_bad_field_is_reported_sorted_by_field(self):
        data = self.good_order(
            order_id="a b",
            quantity=11,
            amount=0,
            delivered_on="2025-02-30",
            ship_at="tomorrow",
            gift="no",
            condition="lost",
            notes="x" * 5001,
            tags=[],
            items=[{"qty": 0}],
            address={"city": "", "zip": "1"},
            surprise=1,
        )
        assert rules(validate_form(order_form(), data)) == [
            ("address.city", "required"),
            ("address.zip", "unknown_field"),
            ("amount", "min"),
            ("condition", "enum"),
            ("delivered_on", "format"),
            ("gift", "type"),
            ("items[0].qty", "min"),
            ("items[0].sku", "required"),
            ("notes", "max_length"),
            ("order_id", "pattern"),
            ("quantity", "max"),
            ("ship_at", "format"),
            ("surprise", "unknown_field"),
            ("tags", "min_items"),
        ]

    def test_messages_name_the_field_and_the_rule(self):
        data = self.good_order(condition="lost", quantity=0, tags=["a", "b", "c"], order_id="x")
        messages = {p.field: p.message for p in validate_form(order_form(), data)}
        assert messages["condition"] == "condition must be one of ok, damaged"
        assert messages["quantity"] == "quantity must be at least 1"
        assert messages["tags"] == "tags must have at most 2 items"
        assert messages["order_id"] == "order_id must match the pattern ^[A-Za-z0-9-]{4,40}$"

    def test_nested_paths_use_dots_and_indexes(self):
        data = self.good_order(items=[{"sku": "A"}, {"sku": 5}, "x"], tags=["toolong"])
        problems = validate_form(order_form(), data)
        assert rules(problems) == [("items[1].sku", "type"), ("items[2]", "type"), ("tags[0]", "max_length")]
        assert problems[0].message == "items[1].sku must be a string, got int 5"

    def test_a_wrong_type_is_reported_once(self):
        problems = validate_form(order_form(), self.good_order(condition=3))
        assert rules(problems) == [("condition", "type")]

    def test_booleans_are_not_numbers(self):
        assert rules(validate_form(order_form(), self.good_order(quantity=True))) == [("quantity", "type")]

    def test_dates_and_datetimes_are_checked(self):
        form = order_form()
        assert validate_form(form, self.good_order(delivered_on="2024-02-29", ship_at="2025-05-01T20:00")) == []
        assert rules(validate_form(form, self.good_order(delivered_on="2025-13-01"))) == [("delivered_on", "format")]
        assert rules(validate_form(form, self.good_order(delivered_on="01/05/2025"))) == [("delivered_on", "format")]
        assert rules(validate_form(form, self.good_order(ship_at="2025-05-01 25:00"))) == [("ship_at", "format")]

    def test_unknown_fields_are_named(self):
        problems = validate_form(order_form(), self.good_order(colour="red", size="XL"))
        assert rules(problems) == [("colour", "unknown_field"), ("size", "unknown_field")]
        assert problems[0].message == "colour is not a field of this form"

    def test_short_string_reports_min_length(self):
        form = make_form(code={"type": "string", "min_length": 3})
        assert validate_form(form, {"code": "ab"}) == [
            FieldProblem("code", "min_length", "code must be at least 3 characters long")
        ]

    def test_empty_required_string_is_reported_as_required(self):
        problems = validate_form(order_form(), self.good_order(order_id=""))
        assert problems == [FieldProblem("order_id", "required", "order_id must not be empty")]

    def test_non_object_data_is_one_problem(self):
        for data in (None, [], "x", 3):
            problems = validate_form(order_form(), data)
            assert len(problems) == 1 and problems[0].field == "" and problems[0].rule == "type"

    def test_approval_reject_needs_a_comment(self):
        form = make_form(approval=True)
        assert validate_form(form, {"decision": "approve"}) == []
        assert validate_form(form, {"decision": "reject", "comment": "price too low"}) == []
        assert validate_form(form, {"decision": "reject"}) == [
            FieldProblem("comment", "required", "comment is required when decision is reject")
        ]
        assert rules(validate_form(form, {"decision": "reject", "comment": ""})) == [("comment", "required")]

    def test_approval_decision_is_required_and_closed(self):
        form = make_form(approval=True)
        assert rules(validate_form(form, {})) == [("decision", "required")]
        assert rules(validate_form(form, {"decision": "maybe"})) == [("decision", "enum")]

    def test_approval_extra_fields_are_validated(self):
        form = make_form(approval=True, deduction={"type": "number", "min": 0})
        assert validate_form(form, {"decision": "approve", "deduction": 12.5}) == []
        assert rules(validate_form(form, {"decision": "approve", "deduction": -1})) == [("deduction", "min")]


class TestMaxBytes:
    """A title's byte length (a CJK character counts 2) is a form rule, not only a rework finding."""

    def form(self) -> FormSpec:
        return make_form(title={"type": "string", "required": True, "max_length": 60, "max_bytes": 60})

    def test_schema_carries_the_custom_keyword(self):
        schema = self.form().json_schema["properties"]["title"]
        assert schema["x-maxBytes"] == 60
        Draft202012Validator.check_schema(self.form().json_schema)  # still a valid 2020-12 schema

    def test_thirty_cjk_characters_fit_and_thirty_one_do_not(self):
        assert validate_form(self.form(), {"title": "好" * 30}) == []
        problems = validate_form(self.form(), {"title": "好" * 31})
        assert [(p.field, p.rule) for p in problems] == [("title", "max_bytes")]
        assert "62" in problems[0].message and "60" in problems[0].message

    def test_ascii_counts_one_byte_each(self):
        assert validate_form(self.form(), {"title": "a" * 60}) == []
        assert [p.rule for p in validate_form(self.form(), {"title": "a" * 59 + "好"})] == ["max_bytes"]

    def test_in_a_list_item_the_problem_names_the_row(self):
        form = make_form(
            changes={
                "type": "list",
                "items": {
                    "type": "object",
                    "fields": {"new_title": {"type": "string", "max_bytes": 4, "label": label()}},
                },
            }
        )
        problems = validate_form(form, {"changes": [{"new_title": "ab"}, {"new_title": "好好好"}]})
        assert [(p.field, p.rule) for p in problems] == [("changes[1].new_title", "max_bytes")]

    @pytest.mark.parametrize("bad", [0, -1, "60", True, 1.5])
    def test_a_bad_limit_is_a_definition_error(self, bad):
        with pytest.raises(FormDefinitionError) as caught:
            make_form(title={"type": "string", "max_bytes": bad})
        assert any("max_bytes" in problem for problem in caught.value.problems)

    def test_only_text_fields_take_it(self):
        with pytest.raises(FormDefinitionError) as caught:
            make_form(count={"type": "integer", "max_bytes": 4})
        assert any("unknown key 'max_bytes'" in problem for problem in caught.value.problems)
