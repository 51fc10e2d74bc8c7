"""The commands about definition versions: migrate stores them, check reports, instances migrate moves instances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from ecomflow.cli import app
from ecomflow.engine.db.models import DefinitionVersion, HumanTask, ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.versions import current_version
from tests.factories import edited_definitions, make_task, step_of

runner = CliRunner()

# The flows.yaml `version:` of returns_exchange (the subject here): its first stored version takes that number.
RETURNS = get_definitions().process("returns_exchange").version


def rename_inspect(raw: dict[str, Any]) -> None:
    step_of(raw, "returns_exchange", "inspect")["key"] = "inspect_parcel"
    approval = step_of(raw, "returns_exchange", "deduction_approval")
    approval["reject_to"] = approval["approves"] = "inspect_parcel"


def write_edited(tmp_path: Path, edit) -> Path:
    raw = dict(edited_definitions(edit).source)
    target = tmp_path / "flows.yaml"
    target.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def waiting_instance() -> str:
    task_id = make_task(step="inspect")
    with session_scope() as session:
        return session.get(HumanTask, task_id).instance_id


class TestMigrate:
    def test_it_stores_each_process_once(self, clean_db: str) -> None:
        first = runner.invoke(app, ["migrate"])
        assert first.exit_code == 0, first.output
        assert f"stored returns_exchange definition version {RETURNS} (flows.yaml version: {RETURNS}" in first.output
        assert f"definition versions: {len(get_definitions().processes)} new" in first.output
        again = runner.invoke(app, ["migrate"])
        assert "definition versions: 0 new" in again.output
        with session_scope() as session:
            assert len(session.scalars(select(DefinitionVersion)).all()) == len(get_definitions().processes)


class TestCheck:
    def test_it_names_the_instances_a_renamed_step_would_strand_and_the_map_to_use(
        self, clean_db: str, tmp_path: Path
    ) -> None:
        instance_id = waiting_instance()
        result = runner.invoke(app, ["check", "--file", str(write_edited(tmp_path, rename_inspect))])
        assert result.exit_code == 0, result.output
        assert f"returns_exchange: 1 running instance(s) on version {RETURNS}" in result.output
        assert "[waits_on_removed_step] step inspect is gone" in result.output
        assert "--map inspect=inspect_parcel" in result.output and instance_id in result.output
        assert "[renamed_step] step inspect looks renamed to inspect_parcel" in result.output

    def test_a_version_no_flow_was_written_for_fails_the_check(self, clean_db: str, tmp_path: Path) -> None:
        def raise_version(raw: dict[str, Any]) -> None:
            raw["processes"]["returns_exchange"]["version"] = RETURNS + 1

        result = runner.invoke(app, ["check", "--file", str(write_edited(tmp_path, raise_version))])
        assert result.exit_code == 1
        assert (
            f"processes.returns_exchange.version: {RETURNS + 1}, but ecomflow.flows.returns_exchange was written for"
            in (result.output)
        )

    def test_nothing_to_say_when_every_instance_runs_the_current_text(self, clean_db: str) -> None:
        waiting_instance()
        result = runner.invoke(app, ["check"])
        assert result.exit_code == 0 and "all on the current definition" in result.output


class TestInstancesMigrate:
    def test_refused_without_a_map_and_done_with_one(self, clean_db: str) -> None:
        instance_id = waiting_instance()
        with session_scope() as session:
            target = current_version(session, edited_definitions(rename_inspect), "returns_exchange")
        args = ["instances", "migrate", "--process", "returns_exchange", "--to-version", str(target)]

        refused = runner.invoke(app, args)
        assert refused.exit_code == 1
        assert f"instance {instance_id} waits on step inspect" in refused.output
        with session_scope() as session:
            assert session.get(ProcessInstance, instance_id).definition_version == RETURNS

        moved = runner.invoke(app, [*args, "--map", "inspect=inspect_parcel"])
        assert moved.exit_code == 0, moved.output
        assert f"moved 1 returns_exchange instance(s) to definition version {target}" in moved.output
        with session_scope() as session:
            assert session.get(ProcessInstance, instance_id).definition_version == target

    def test_a_version_not_stored_or_a_bad_map_is_named(self, clean_db: str) -> None:
        waiting_instance()
        missing = runner.invoke(app, ["instances", "migrate", "--process", "returns_exchange", "--to-version", "9"])
        assert missing.exit_code == 2 and "no stored definition version 9" in missing.output
        bad = runner.invoke(
            app, ["instances", "migrate", "--process", "returns_exchange", "--to-version", "1", "--map", "inspect"]
        )
        assert bad.exit_code == 1 and "expected old_step=new_step" in bad.output
