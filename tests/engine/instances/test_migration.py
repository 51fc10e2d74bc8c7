"""Moving running instances to another definition version: done with a step map, refused without one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import AuditEvent, HumanTask, ProcessInstance, StepResult
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.versions import current_version
from ecomflow.engine.errors import MigrationRefused, ValidationFailed
from ecomflow.engine.instances.auto_step_results import result_key, store_result
from ecomflow.engine.instances.migration import migrate_instances, parse_step_map
from ecomflow.engine.tasks.actions import claim_task, complete_task
from tests.factories import edited_definitions, make_instance, make_task, make_user, step_of

# The flows.yaml `version:` of returns_exchange: its stored version here; the edited text is stored as V + 1.
V = get_definitions().process("returns_exchange").version
RUNS = frozenset({V})


def rename_inspect_and_require_photos(raw: dict[str, Any]) -> None:
    """Version 2 of returns: `inspect` is now `inspect_parcel` and asks whether photos were taken."""
    inspect = step_of(raw, "returns_exchange", "inspect")
    inspect["key"] = "inspect_parcel"
    inspect["form"]["fields"]["photos_taken"] = {
        "type": "boolean",
        "required": True,
        "label": {"zh": "拍照", "en": "Photos"},
    }
    approval = step_of(raw, "returns_exchange", "deduction_approval")
    approval["reject_to"] = approval["approves"] = "inspect_parcel"
    step_of(raw, "returns_exchange", "policy_check")["key"] = "eligibility_check"


def store_version_2(edit=rename_inspect_and_require_photos) -> int:
    with session_scope() as session:
        return current_version(session, edited_definitions(edit), "returns_exchange")


def instance_of(task_id: str) -> str:
    with session_scope() as session:
        return session.get(HumanTask, task_id).instance_id


def migrate(step_map: dict[str, str], *, to_version: int = V + 1, written_for: frozenset[int] = RUNS):
    with session_scope() as session:
        return migrate_instances(
            session,
            process_key="returns_exchange",
            to_version=to_version,
            step_map=step_map,
            actor="tester",
            written_for=written_for,
        )


def snapshot(instance_id: str) -> tuple[int, list[str], list[str], list[str]]:
    with session_scope() as session:
        version = session.get(ProcessInstance, instance_id).definition_version
        steps = session.scalars(select(HumanTask.step_key).where(HumanTask.instance_id == instance_id)).all()
        results = session.scalars(select(StepResult.key).where(StepResult.instance_id == instance_id)).all()
        events = session.scalars(
            select(AuditEvent.type).where(AuditEvent.instance_id == instance_id, AuditEvent.type == "instance.migrated")
        ).all()
        return version, sorted(steps), sorted(results), list(events)


class TestWithAMap:
    def test_waiting_instances_move_their_tasks_and_results_to_the_renamed_steps(self, clean_db: str) -> None:
        waiting = instance_of(make_task(step="inspect"))
        with session_scope() as session:
            store_result(
                session,
                key=result_key(waiting, "policy_check", 1),
                instance_id=waiting,
                step_key="policy_check",
                result={"eligible": True},
            )
        reviewing = instance_of(make_task(step="cs_review"))
        assert store_version_2() == V + 1

        result = migrate({"inspect": "inspect_parcel", "policy_check": "eligibility_check"})

        assert sorted(result.moved) == sorted([waiting, reviewing])
        version, steps, results, events = snapshot(waiting)
        assert (version, steps, results, events) == (
            V + 1,
            ["inspect_parcel"],
            [result_key(waiting, "eligibility_check", 1)],
            ["instance.migrated"],
        )
        assert snapshot(reviewing)[:2] == (V + 1, ["cs_review"])
        with session_scope() as session:
            event = session.scalar(
                select(AuditEvent).where(AuditEvent.instance_id == waiting, AuditEvent.type == "instance.migrated")
            )
            assert (event.actor, event.data["from"], event.data["to"]) == ("tester", V, V + 1)
            assert event.data["steps"] == {"inspect": "inspect_parcel", "policy_check": "eligibility_check"}

    def test_the_moved_task_is_completed_against_the_new_version_s_form(self, clean_db: str) -> None:
        task_id = make_task(step="inspect")
        store_version_2()
        migrate({"inspect": "inspect_parcel"})
        worker, _ = make_user(roles=("warehouse",))
        with session_scope() as session:
            claim_task(session, task_id=task_id, principal=worker)
        good = {"condition": "ok", "restock": "yes"}
        with session_scope() as session, pytest.raises(ValidationFailed) as refused:
            complete_task(session, task_id=task_id, principal=worker, data=good)
        assert [p.field for p in refused.value.problems] == ["photos_taken"]
        with session_scope() as session:
            assert (
                complete_task(session, task_id=task_id, principal=worker, data={**good, "photos_taken": True}).state
                == "completed"
            )

    def test_instances_already_on_the_target_and_ended_ones_stay_as_they_are(self, clean_db: str) -> None:
        ended = make_instance()
        with session_scope() as session:
            session.get(ProcessInstance, ended).state = "completed"
        store_version_2()
        assert migrate({"inspect": "inspect_parcel"}).moved == ()
        assert snapshot(ended)[0] == V


class TestRefused:
    def test_a_waited_step_the_target_lacks_needs_a_map_and_nothing_moves_without_it(self, clean_db: str) -> None:
        waiting = instance_of(make_task(step="inspect"))
        other = instance_of(make_task(step="cs_review"))
        store_version_2()
        before = snapshot(waiting), snapshot(other)

        with pytest.raises(MigrationRefused) as refused:
            migrate({})

        assert refused.value.problems == [
            f"instance {waiting} waits on step inspect, which the target version lacks; "
            "map it with --map inspect=<step>"
        ]
        assert (snapshot(waiting), snapshot(other)) == before

    def test_a_map_to_a_step_the_target_lacks_is_refused(self, clean_db: str) -> None:
        make_task(step="inspect")
        store_version_2()
        with pytest.raises(MigrationRefused, match="1 problem") as refused:
            migrate({"inspect": "inspection"})
        assert refused.value.problems[0].startswith("--map inspect=inspection: version has no step inspection")

    def test_a_target_the_loaded_flow_was_not_written_for_is_refused(self, clean_db: str) -> None:
        make_task(step="cs_review")

        def declare_version_2(raw: dict[str, Any]) -> None:
            rename_inspect_and_require_photos(raw)
            raw["processes"]["returns_exchange"]["version"] = V + 1

        store_version_2(declare_version_2)
        with pytest.raises(MigrationRefused) as refused:
            migrate({"inspect": "inspect_parcel"}, written_for=frozenset({V}))
        assert f"flows.yaml version: {V + 1}" in refused.value.problems[0]
        assert migrate({"inspect": "inspect_parcel"}, written_for=frozenset({V, V + 1})).moved

    def test_two_steps_mapped_onto_one_are_refused(self, clean_db: str) -> None:
        instance_id = make_instance()
        make_task(step="inspect", instance_id=instance_id)
        make_task(step="cs_review", instance_id=instance_id)
        store_version_2()
        with pytest.raises(MigrationRefused) as refused:
            migrate({"inspect": "inspect_parcel", "cs_review": "inspect_parcel"})
        assert refused.value.problems == [
            "--map: steps inspect and cs_review all map to inspect_parcel; their tasks would collide"
        ]
        assert snapshot(instance_id)[:2] == (V, ["cs_review", "inspect"])

    def test_a_map_onto_a_step_the_instance_already_has_tasks_of_is_refused(self, clean_db: str) -> None:
        instance_id = make_instance()
        make_task(step="cs_review", instance_id=instance_id)
        make_task(step="goodwill_approval", instance_id=instance_id)
        store_version_2()
        with pytest.raises(MigrationRefused) as refused:
            migrate({"cs_review": "goodwill_approval"})
        assert refused.value.problems == [
            f"instance {instance_id} has tasks of both cs_review and goodwill_approval; "
            "--map cs_review=goodwill_approval would make two of one"
        ]


class TestParseStepMap:
    def test_pairs_become_a_mapping(self) -> None:
        assert parse_step_map(["inspect=inspect_parcel", " a = b "]) == {"inspect": "inspect_parcel", "a": "b"}

    @pytest.mark.parametrize("pair", ["inspect", "=b", "a=", "a=b"])
    def test_a_malformed_or_repeated_pair_is_named(self, pair: str) -> None:
        with pytest.raises(MigrationRefused) as refused:
            parse_step_map(["a=c", pair] if pair == "a=b" else [pair])
        assert repr(pair) in refused.value.problems[0]
