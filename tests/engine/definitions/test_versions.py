"""Stored definition versions: each change of a process's text is a new version; instances read the one they pinned."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sqlalchemy import select

from ecomflow.engine.db.models import DefinitionVersion, HumanTask, ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import load_definitions, parse_process_text
from ecomflow.engine.definitions.stored_text import SHARED_SECTIONS, text_sha256
from ecomflow.engine.definitions.versions import (
    current_version,
    current_version_if_stored,
    definitions_at,
    list_versions,
    spec_of_instance,
    step_of_task,
    store_versions,
)
from ecomflow.engine.errors import ValidationFailed, VersionMissing
from ecomflow.engine.tasks.actions import claim_task, complete_task
from tests.factories import edited_definitions, make_instance, make_task, make_user, pin_to_edited_version, step_of

# The flows.yaml `version:` of returns_exchange (the subject here): its first stored version takes that number.
RETURNS = get_definitions().process("returns_exchange").version

GOOD_INSPECTION = {"condition": "ok", "restock": "yes"}


def add_required_field(raw: dict[str, Any]) -> None:
    """Give the returns inspection a new required field."""
    step_of(raw, "returns_exchange", "inspect")["form"]["fields"]["photos_taken"] = {
        "type": "boolean",
        "required": True,
        "label": {"zh": "已拍照", "en": "Photos taken"},
    }


def _instance(instance_id: str) -> ProcessInstance:
    with session_scope() as session:
        return session.get(ProcessInstance, instance_id)


@pytest.mark.db_independent
class TestStoredText:
    def test_each_process_text_holds_its_section_and_the_shared_ones_and_reads_back_the_same(self) -> None:
        definitions = get_definitions()
        for key, text in definitions.process_texts.items():
            raw = yaml.safe_load(text)
            assert set(raw) == {*SHARED_SECTIONS, "processes"} and list(raw["processes"]) == [key]
            assert "calendar" not in raw
            read = parse_process_text(raw, calendar=definitions.calendar)
            assert read.process(key) == definitions.process(key), key
            assert dict(read.rules) == dict(definitions.rules)

    def test_comments_and_layout_change_no_text(self, tmp_path) -> None:
        shipped = get_definitions()
        source = shipped.source
        reformatted = tmp_path / "flows.yaml"
        reformatted.write_text(
            "# a comment the stored text never holds\n"
            + yaml.safe_dump(dict(source), allow_unicode=True, sort_keys=False, width=60, indent=4),
            encoding="utf-8",
        )
        assert load_definitions(reformatted).process_texts == shipped.process_texts

    def test_a_change_to_a_shared_section_changes_every_process_text(self) -> None:
        changed = edited_definitions(lambda raw: raw["rules"]["banned_terms"].append("绝无仅有"))
        shipped = get_definitions().process_texts
        assert all(changed.process_texts[key] != shipped[key] for key in shipped)

    def test_a_change_to_the_calendar_changes_no_process_text(self) -> None:
        changed = edited_definitions(lambda raw: raw["calendar"]["workdays"].append("2026-12-26"))
        assert changed.process_texts == get_definitions().process_texts


class TestStoring:
    def test_the_first_version_takes_the_flows_yaml_version_and_a_change_the_next_number(self, clean_db: str) -> None:
        with session_scope() as session:
            first = store_versions(session, get_definitions())
        assert {(v.process_key, v.version, v.new) for v in first} == {
            (key, spec.version, True) for key, spec in get_definitions().processes.items()
        }
        with session_scope() as session:
            again = store_versions(session, get_definitions())
        assert not any(v.new for v in again) and [v.version for v in again] == [v.version for v in first]

        changed = edited_definitions(add_required_field)
        with session_scope() as session:
            stored = {v.process_key: v for v in store_versions(session, changed)}
        assert (stored["returns_exchange"].version, stored["returns_exchange"].new) == (RETURNS + 1, True)
        assert stored["returns_exchange"].declared_version == RETURNS  # flows.yaml's `version:` was not raised
        assert not stored["presales_order"].new
        with session_scope() as session:
            row = session.scalar(
                select(DefinitionVersion).where(
                    DefinitionVersion.process_key == "returns_exchange", DefinitionVersion.version == RETURNS + 1
                )
            )
            assert (row.text, row.sha256) == (
                changed.process_texts["returns_exchange"],
                text_sha256(changed.process_texts["returns_exchange"]),
            )

    def test_going_back_to_an_earlier_text_finds_its_version_again(self, clean_db: str) -> None:
        changed = edited_definitions(add_required_field)
        with session_scope() as session:
            assert current_version(session, get_definitions(), "returns_exchange") == RETURNS
            assert current_version(session, changed, "returns_exchange") == RETURNS + 1
            assert current_version(session, get_definitions(), "returns_exchange") == RETURNS
            assert [v.version for v in list_versions(session, "returns_exchange")] == [RETURNS, RETURNS + 1]

    def test_a_start_stores_the_text_it_pins_when_nobody_did(self, clean_db: str) -> None:
        with session_scope() as session:
            assert current_version_if_stored(session, get_definitions(), "returns_exchange") is None
        instance_id = make_instance()
        assert _instance(instance_id).definition_version == RETURNS
        with session_scope() as session:
            assert current_version_if_stored(session, get_definitions(), "returns_exchange") == RETURNS

    def test_a_version_not_stored_is_refused_by_name(self, clean_db: str) -> None:
        with session_scope() as session, pytest.raises(VersionMissing, match="no stored definition version 7"):
            definitions_at(session, "returns_exchange", 7)


class TestPinning:
    def test_an_instance_reads_its_own_version_and_a_new_one_the_current(self, clean_db: str) -> None:
        old = make_instance()
        pinned = pin_to_edited_version(old, add_required_field)
        new = make_instance()
        assert (_instance(old).definition_version, _instance(new).definition_version) == (pinned, RETURNS)
        with session_scope() as session:
            old_form = spec_of_instance(session, session.get(ProcessInstance, old)).step("inspect").form
            new_form = spec_of_instance(session, session.get(ProcessInstance, new)).step("inspect").form
        assert "photos_taken" in old_form.field_names and "photos_taken" not in new_form.field_names

    def test_a_completion_is_checked_against_the_instance_s_version(self, clean_db: str) -> None:
        worker, _ = make_user(roles=("warehouse",))
        on_v1, on_v2 = make_task(), make_task()
        pin_to_edited_version(_task_instance(on_v2), add_required_field)
        for task_id in (on_v1, on_v2):
            with session_scope() as session:
                claim_task(session, task_id=task_id, principal=worker)
        with session_scope() as session:
            assert complete_task(session, task_id=on_v1, principal=worker, data=GOOD_INSPECTION).state == "completed"
        with session_scope() as session, pytest.raises(ValidationFailed) as refused:
            complete_task(session, task_id=on_v2, principal=worker, data=GOOD_INSPECTION)
        assert [p.field for p in refused.value.problems] == ["photos_taken"]
        with session_scope() as session:
            done = complete_task(
                session, task_id=on_v2, principal=worker, data={**GOOD_INSPECTION, "photos_taken": True}
            )
            assert done.state == "completed"

    def test_the_step_of_a_task_comes_from_its_instance_s_version(self, clean_db: str) -> None:
        task_id = make_task()
        pin_to_edited_version(_task_instance(task_id), add_required_field)
        with session_scope() as session:
            step = step_of_task(session, session.get(HumanTask, task_id))
        assert "photos_taken" in step.form.field_names


def _task_instance(task_id: str) -> str:
    with session_scope() as session:
        return session.get(HumanTask, task_id).instance_id
