"""Move running instances of a process to another stored definition version, explicitly and all at once.

A move re-pins each instance (process_instances.definition_version) and carries its history
across renamed steps: every task, auto-step result and timer of a step mapped `old=new` is
re-keyed to the new step, so the replay on the new version finds the work already done and the
task still waited on, never a second one. It is refused as a whole, before anything changes,
when an instance waits on a step the target version lacks and no mapping names where it goes,
when a mapping points at a step the target lacks, or when the loaded flow code was not written
for the target. Each moved instance gets an `instance.migrated` audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask, ProcessInstance, StepResult, Timer
from ecomflow.engine.definitions.compatibility import waiting_steps
from ecomflow.engine.definitions.processes import ProcessSpec
from ecomflow.engine.definitions.versions import definitions_at, list_versions
from ecomflow.engine.errors import MigrationRefused
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.instances.auto_step_results import result_key
from ecomflow.engine.instances.lifecycle import ACTIVE_INSTANCE_STATES
from ecomflow.engine.tasks.states import ACTIVE_STATES

__all__ = ["MigrationResult", "migrate_instances", "parse_step_map"]


@dataclass(frozen=True)
class MigrationResult:
    """What a migration moved: the instance ids, and the step mapping it applied."""

    process_key: str
    to_version: int
    moved: tuple[str, ...]
    step_map: Mapping[str, str]


def parse_step_map(pairs: list[str]) -> dict[str, str]:
    """Return `old=new` pairs as a mapping; raise MigrationRefused naming a malformed or repeated one."""
    mapping: dict[str, str] = {}
    problems = []
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            problems.append(f"--map {pair!r}: expected old_step=new_step")
        elif old.strip() in mapping:
            problems.append(f"--map {pair!r}: step {old.strip()} is mapped twice")
        else:
            mapping[old.strip()] = new.strip()
    if problems:
        raise MigrationRefused("the step mapping is malformed", problems=problems)
    return mapping


def migrate_instances(
    session: Session,
    *,
    process_key: str,
    to_version: int,
    step_map: Mapping[str, str],
    actor: str,
    written_for: frozenset[int],
) -> MigrationResult:
    """Move every running instance of the process on another version to `to_version`; refuse before any change."""
    target = definitions_at(session, process_key, to_version).process(process_key)
    declared = next(v.declared_version for v in list_versions(session, process_key) if v.version == to_version)
    instances = list(
        session.scalars(
            select(ProcessInstance)
            .where(
                ProcessInstance.process_key == process_key,
                ProcessInstance.definition_version != to_version,
                ProcessInstance.state.in_(sorted(ACTIVE_INSTANCE_STATES)),
            )
            .order_by(ProcessInstance.created_at, ProcessInstance.id)
            .with_for_update()
        )
    )
    waiting = waiting_steps(session, [i.id for i in instances])
    problems = _problems(target, declared, step_map, written_for, waiting)
    problems += _collisions(session, [i.id for i in instances], step_map)
    if problems:
        raise MigrationRefused(
            f"refused to move {len(instances)} {process_key} instance(s) to version {to_version}: "
            f"{len(problems)} problem(s)",
            problems=problems,
            process=process_key,
        )
    for instance in instances:
        _move(session, instance, target=target, to_version=to_version, step_map=step_map, actor=actor)
    return MigrationResult(
        process_key=process_key, to_version=to_version, moved=tuple(i.id for i in instances), step_map=dict(step_map)
    )


def _problems(
    target: ProcessSpec,
    declared: int,
    step_map: Mapping[str, str],
    written_for: frozenset[int],
    waiting: Mapping[str, set[str]],
) -> list[str]:
    keys = {s.key for s in target.steps}
    problems = [
        f"--map {old}={new}: version has no step {new} (steps: {', '.join(s.key for s in target.steps)})"
        for old, new in step_map.items()
        if new not in keys
    ]
    targets: dict[str, list[str]] = {}
    for old, new in step_map.items():
        targets.setdefault(new, []).append(old)
    problems += [
        f"--map: steps {' and '.join(olds)} all map to {new}; their tasks would collide"
        for new, olds in targets.items()
        if len(olds) > 1
    ]
    if declared not in written_for:
        versions = ", ".join(map(str, sorted(written_for))) or "none"
        problems.append(
            f"the target has flows.yaml version: {declared}, but the loaded flow of {target.key} was written for "
            f"version: {versions}; deploy flow code written for it first"
        )
    for instance_id, steps in waiting.items():
        for step in sorted(steps):
            if step not in keys and step not in step_map:
                problems.append(
                    f"instance {instance_id} waits on step {step}, which the target version lacks; "
                    f"map it with --map {step}=<step>"
                )
    return problems


def _collisions(session: Session, instance_ids: list[str], step_map: Mapping[str, str]) -> list[str]:
    """Name instances that hold tasks of both a mapped step and its new name: re-keying would make two of one."""
    if not instance_ids or not step_map:
        return []
    held = session.execute(
        select(HumanTask.instance_id, HumanTask.step_key)
        .where(HumanTask.instance_id.in_(instance_ids), HumanTask.step_key.in_({*step_map, *step_map.values()}))
        .distinct()
    ).all()
    steps_of: dict[str, set[str]] = {}
    for instance_id, step_key in held:
        steps_of.setdefault(instance_id, set()).add(step_key)
    return [
        f"instance {instance_id} has tasks of both {old} and {new}; --map {old}={new} would make two of one"
        for instance_id, steps in steps_of.items()
        for old, new in step_map.items()
        if old != new and {old, new} <= steps
    ]


def _move(
    session: Session,
    instance: ProcessInstance,
    *,
    target: ProcessSpec,
    to_version: int,
    step_map: Mapping[str, str],
    actor: str,
) -> None:
    renamed: dict[str, str] = {}
    for old, new in step_map.items():
        if _rekey_step(session, instance.id, old=old, new=new, target=target):
            renamed[old] = new
    previous = instance.definition_version
    session.execute(
        update(ProcessInstance)
        .where(ProcessInstance.id == instance.id)
        .values(definition_version=to_version)
        .execution_options(synchronize_session=False)
    )
    record_event(
        session,
        type="instance.migrated",
        actor=actor,
        instance_id=instance.id,
        data={"process": instance.process_key, "from": previous, "to": to_version, "steps": renamed},
    )


def _rekey_step(session: Session, instance_id: str, *, old: str, new: str, target: ProcessSpec) -> bool:
    """Re-key the instance's tasks, auto-step results and timers of step `old` to `new`; return whether any moved."""
    step = target.step(new)
    tasks = session.execute(
        update(HumanTask)
        .where(HumanTask.instance_id == instance_id, HumanTask.step_key == old)
        .values(step_key=new, kind=step.kind)
        .execution_options(synchronize_session=False)
    ).rowcount
    if step.role is not None:
        # An open task of a renamed step goes to whoever the new step's role is: the version's rule now.
        session.execute(
            update(HumanTask)
            .where(HumanTask.instance_id == instance_id, HumanTask.step_key == new, HumanTask.lane == "")
            .where(HumanTask.state.in_(sorted(ACTIVE_STATES)))
            .values(role=step.role)
            .execution_options(synchronize_session=False)
        )
    results = session.scalars(
        select(StepResult).where(StepResult.instance_id == instance_id, StepResult.step_key == old)
    ).all()
    for result in results:
        # Keys are instance:step:round, a child step's instance:step[index]:round: keep what follows the step.
        named, round = result.key.removeprefix(f"{instance_id}:").rsplit(":", 1)
        result.key, result.step_key = result_key(instance_id, new + named.removeprefix(old), int(round)), new
    session.execute(
        update(ProcessInstance)
        .where(ProcessInstance.parent_id == instance_id, ProcessInstance.parent_step == old)
        .values(parent_step=new)
        .execution_options(synchronize_session=False)
    )
    timers = session.execute(
        update(Timer)
        .where(Timer.instance_id == instance_id, Timer.step_key == old)
        .values(step_key=new)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    return bool(tasks or results or timers)
