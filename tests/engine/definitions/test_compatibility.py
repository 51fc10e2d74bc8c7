"""What running instances would meet on a changed flows.yaml: the spec comparison and the report over the database."""

from __future__ import annotations

from typing import Any

import pytest

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.definitions.compatibility import SpecChanges, compare_specs, report_running_instances
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.versions import store_versions
from tests.factories import edited_definitions, make_instance, make_task, step_of

# Each process's flow runs the flows.yaml version it declares today.
RUNS_V1 = {key: frozenset({spec.version}) for key, spec in get_definitions().processes.items()}


def rename_inspect(raw: dict[str, Any]) -> None:
    """Rename the returns inspection to inspect_parcel (and the approval that refers to it)."""
    step_of(raw, "returns_exchange", "inspect")["key"] = "inspect_parcel"
    approval = step_of(raw, "returns_exchange", "deduction_approval")
    approval["reject_to"] = approval["approves"] = "inspect_parcel"


def require_photo_count(raw: dict[str, Any]) -> None:
    """Give the parcel step a new required field."""
    step_of(raw, "returns_exchange", "await_parcel")["form"]["fields"]["photo_count"] = {
        "type": "integer",
        "required": True,
        "label": {"zh": "照片数", "en": "Photos"},
    }


def add_unpack_step(raw: dict[str, Any]) -> None:
    """Add a human step before the inspection."""
    steps = raw["processes"]["returns_exchange"]["steps"]
    index = steps.index(step_of(raw, "returns_exchange", "inspect"))
    steps.insert(
        index,
        {
            "key": "unpack",
            "kind": "human",
            "role": "warehouse",
            "title": {"zh": "拆包", "en": "Unpack"},
            "form": {"fields": {"ok": {"type": "boolean", "required": True, "label": {"zh": "完好", "en": "Intact"}}}},
        },
    )


def _report(definitions, runnable=RUNS_V1):
    with read_scope() as session:
        return report_running_instances(session, definitions, runnable=runnable)


@pytest.mark.db_independent
class TestCompareSpecs:
    def test_a_renamed_step_is_told_from_a_removed_one(self) -> None:
        old = get_definitions().process("returns_exchange")
        changes = compare_specs(old, edited_definitions(rename_inspect).process("returns_exchange"))
        assert (changes.removed, changes.added, changes.renamed) == (
            ("inspect",),
            ("inspect_parcel",),
            (("inspect", "inspect_parcel"),),
        )

    def test_a_step_of_another_kind_in_its_place_is_no_rename(self) -> None:
        def replace_inspect(raw: dict[str, Any]) -> None:
            rename_inspect(raw)
            inspect = step_of(raw, "returns_exchange", "inspect_parcel")
            inspect["role"] = "customer_service"

        changes = compare_specs(
            get_definitions().process("returns_exchange"),
            edited_definitions(replace_inspect).process("returns_exchange"),
        )
        assert changes.renamed == () and changes.removed == ("inspect",)

    def test_a_new_required_field_is_named_with_its_step(self) -> None:
        changes = compare_specs(
            get_definitions().process("returns_exchange"),
            edited_definitions(require_photo_count).process("returns_exchange"),
        )
        assert changes.new_required == (("await_parcel", "photo_count"),)
        assert changes.removed == changes.added == ()

    def test_the_same_spec_has_no_changes(self) -> None:
        spec = get_definitions().process("page_design")
        assert compare_specs(spec, spec) == SpecChanges()


class TestReport:
    def test_nothing_to_report_when_every_instance_is_on_the_current_text(self, clean_db: str) -> None:
        make_task()
        assert _report(get_definitions()) == []

    def test_an_instance_waiting_on_a_renamed_step_is_named_with_the_map_to_use(self, clean_db: str) -> None:
        task_id = make_task(step="inspect")
        idle = make_instance()
        with session_scope() as session:
            instance_id = session.get(HumanTask, task_id).instance_id
        [report] = _report(edited_definitions(rename_inspect))
        assert (report.process_key, report.from_version, report.current_version, report.running) == (
            "returns_exchange",
            get_definitions().process("returns_exchange").version,
            None,
            2,
        )
        by_kind = {f.kind: f for f in report.findings}
        assert by_kind["waits_on_removed_step"].instance_ids == (instance_id,)
        assert "--map inspect=inspect_parcel" in by_kind["waits_on_removed_step"].message
        assert by_kind["renamed_step"].count == 1
        assert idle not in by_kind["waits_on_removed_step"].instance_ids

    def test_a_new_required_field_counts_the_instances_that_have_not_done_its_step(self, clean_db: str) -> None:
        make_task(step="await_parcel")
        make_instance()
        changed = edited_definitions(require_photo_count)
        with session_scope() as session:
            store_versions(session, changed)  # stored at migrate: the report names the version number
        [report] = _report(changed)
        assert report.current_version == get_definitions().process("returns_exchange").version + 1
        [finding] = report.findings
        assert (finding.kind, finding.count) == ("new_required_field", 2)
        assert "await_parcel" in finding.message and "photo_count" in finding.message

    def test_a_new_step_before_where_an_instance_waits_is_reported(self, clean_db: str) -> None:
        make_task(step="inspect")
        make_task(step="cs_review")
        [report] = _report(edited_definitions(add_unpack_step))
        [finding] = [f for f in report.findings if f.kind == "new_step_before"]
        assert finding.count == 1 and "unpack" in finding.message

    def test_instances_the_loaded_flow_cannot_run_are_reported_even_on_the_current_text(self, clean_db: str) -> None:
        make_instance()
        later = get_definitions().process("returns_exchange").version + 1
        [report] = _report(get_definitions(), runnable={**RUNS_V1, "returns_exchange": frozenset({later})})
        assert [f.kind for f in report.findings] == ["unrunnable"]
        assert f"written for flows.yaml version: {later}" in report.findings[0].message
