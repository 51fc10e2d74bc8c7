"""The demo fills every human step's form with sample_object: each sample must pass its form's own rules."""

from __future__ import annotations

import pytest

from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.forms import validate_form
from ecomflow.sample_data import is_file_field, sample_object
from ecomflow.sample_figures import creative_id

pytestmark = pytest.mark.db_independent

FORMS = [
    pytest.param(step.form, id=f"{process.key}/{step.key}")
    for process in get_definitions().processes.values()
    for step in process.steps
    if step.form is not None
]


def _file_fields(schema: dict) -> set[str]:
    """Names of the file fields at any depth (a list of objects may hold one per item)."""
    names = set()
    for name, prop in schema.get("properties", {}).items():
        if is_file_field(prop):
            names.add(name)
        names |= _file_fields(prop) | _file_fields(prop.get("items", {}))
    return names


@pytest.mark.parametrize("form", FORMS)
def test_the_sample_of_every_form_keeps_its_rules(form) -> None:
    schema = dict(form.json_schema)
    files = _file_fields(schema)
    # Without an uploader the sample leaves file fields out: only their absence may be reported.
    problems = [
        p for p in validate_form(form, sample_object(schema)) if p.field.rsplit(".", 1)[-1].split("[")[0] not in files
    ]
    assert problems == []


def test_the_demo_links_its_creative_to_the_sample_ad_report() -> None:
    # The demo's approved creative ran as the 直通车 report's first creative, so the visual KPI has clicks.
    assert sample_object({"properties": {"ad_creative_id": {"type": "string"}}}) == {"ad_creative_id": creative_id(1)}
