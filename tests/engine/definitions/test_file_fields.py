"""File and image fields in flows.yaml: their rules compile to attrs and a JSON Schema a client can follow."""

from __future__ import annotations

import pytest

from ecomflow.engine.definitions.forms import compile_form, validate_form
from ecomflow.engine.errors import FormDefinitionError

pytestmark = pytest.mark.db_independent

LABEL = {"zh": "图", "en": "Image"}
ID = "3f2b8c1e-6d4a-4f7b-9a1c-2e5d8f0b7c6a"


def form(**fields: dict) -> object:
    return compile_form({"fields": fields}, where="f")


class TestCompiling:
    def test_a_list_of_main_images_states_every_rule_in_its_schema(self) -> None:
        spec = {"type": "image", "label": LABEL, "min_files": 5, "max_files": 10, "accept": ["image/jpeg"]}
        spec |= {"max_size": "3MB", "min_width": 800, "min_height": 800, "square": True}
        schema = form(main=spec).json_schema["properties"]["main"]
        assert (schema["type"], schema["minItems"], schema["maxItems"], schema["uniqueItems"]) == ("array", 5, 10, True)
        item = schema["items"]
        assert (item["format"], item["contentMediaType"]) == ("uuid", "image/jpeg")
        assert item["x-attachment"] == {
            "kind": "image",
            "accept": ["image/jpeg"],
            "max_size": 3 * 1024 * 1024,
            "min_width": 800,
            "min_height": 800,
            "square": True,
        }

    def test_one_file_is_an_id_and_several_types_share_a_wildcard(self) -> None:
        schema = form(source={"type": "file", "label": LABEL}).json_schema["properties"]["source"]
        assert schema["type"] == "string" and schema["contentMediaType"] == "*/*"
        images = form(shot={"type": "image", "label": LABEL}).json_schema["properties"]["shot"]
        assert images["contentMediaType"] == "image/*"

    @pytest.mark.parametrize(
        ("spec", "problem"),
        [
            ({"accept": ["application/pdf"]}, "f.fields.x.accept: application/pdf not accepted for image fields"),
            ({"max_size": "3 GB"}, "f.fields.x.max_size: expected a positive byte count or a size like 3MB"),
            ({"min_files": 3, "max_files": 2}, "f.fields.x: min_files (3) is greater than max_files (2)"),
            ({"white_background": {"level": 300, "share": 0.9}}, "f.fields.x.white_background.level"),
            ({"size_by": {"field": "placement", "sizes": {"banner": [1920]}}}, "f.fields.x.size_by.sizes.banner"),
            ({"colour": "red"}, "f.fields.x: unknown key 'colour' for image fields"),
        ],
    )
    def test_a_wrong_rule_is_named_with_its_place(self, spec: dict, problem: str) -> None:
        with pytest.raises(FormDefinitionError) as refused:
            form(x={"type": "image", "label": LABEL, **spec})
        assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems

    def test_size_by_needs_a_sibling_enum_with_a_size_for_every_value(self) -> None:
        placement = {"type": "enum", "values": ["home", "ztc"], "label": LABEL}
        image = {"type": "image", "label": LABEL, "size_by": {"field": "placement", "sizes": {"home": [1920, 600]}}}
        with pytest.raises(FormDefinitionError) as refused:
            form(placement=placement, image=image)
        assert refused.value.problems == ["f.fields.image.size_by.sizes: no size for ztc"]


class TestValidating:
    def test_an_id_that_is_no_attachment_id_is_named(self) -> None:
        compiled = form(shot={"type": "image", "label": LABEL, "required": True})
        [problem] = validate_form(compiled, {"shot": "https://img.example.com/1.jpg"})
        assert (problem.field, problem.rule) == ("shot", "format")
        assert problem.message == "shot must be an attachment id from POST /attachments"
        assert validate_form(compiled, {"shot": ID}) == []

    def test_the_same_file_twice_is_named(self) -> None:
        compiled = form(shots={"type": "image", "label": LABEL, "max_files": 3})
        [problem] = validate_form(compiled, {"shots": [ID, ID]})
        assert (problem.field, problem.rule) == ("shots", "unique")
