"""What running instances would meet if moved to a process's current definition: `ecomflow check` reports it.

Instances stay on the version they started with, so an edit of flows.yaml changes nothing for
them by itself. This module tells, per process and per version that running instances are on,
what a move to the current text would mean for them — a step they wait on that is gone, a step
that looks renamed, a required field that is new, a new step they would be sent to — and whether
the loaded flow code can run each version at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import HumanTask, ProcessInstance, Timer
from ecomflow.engine.definitions.processes import Definitions, ProcessSpec
from ecomflow.engine.definitions.versions import current_version_if_stored, definitions_at, list_versions
from ecomflow.engine.errors import DefinitionMissing
from ecomflow.engine.tasks.states import ACTIVE_STATES, TaskState

__all__ = ["Finding", "ProcessReport", "SpecChanges", "compare_specs", "report_running_instances", "waiting_steps"]

_ACTIVE_INSTANCE_STATES = ("running", "waiting")
_SHOWN_IDS = 5  # instance ids named per finding; the count says how many there are


@dataclass(frozen=True)
class SpecChanges:
    """How a process's steps differ between two versions."""

    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    # (old key, new key): a removed and an added step of the same kind, role and place.
    renamed: tuple[tuple[str, str], ...] = ()
    # (step, field): a required field a step present in both versions gains.
    new_required: tuple[tuple[str, str], ...] = ()
    # (step, old kind, new kind)
    kind_changed: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Finding:
    """One thing some running instances would meet, with the ids of a few of them."""

    kind: str  # waits_on_removed_step | renamed_step | new_required_field | new_step_before | unrunnable
    message: str
    count: int = 0
    instance_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcessReport:
    """A process whose running instances are on a version other than the current text."""

    process_key: str
    from_version: int
    current_version: int | None  # None: the current text is not stored yet (`ecomflow migrate` stores it)
    running: int
    findings: tuple[Finding, ...] = field(default_factory=tuple)


def compare_specs(old: ProcessSpec, new: ProcessSpec) -> SpecChanges:
    """Return how the steps of `new` differ from those of `old` (a pure comparison)."""
    old_keys, new_keys = [s.key for s in old.steps], [s.key for s in new.steps]
    removed = [k for k in old_keys if k not in new_keys]
    added = [k for k in new_keys if k not in old_keys]
    renamed = []
    for key in removed:
        twin = _renamed_as(old, new, key, [a for a in added if a not in {n for _, n in renamed}])
        if twin is not None:
            renamed.append((key, twin))
    new_required, kind_changed = [], []
    for step in new.steps:
        if step.key not in old_keys:
            continue
        before = old.step(step.key)
        if before.kind != step.kind:
            kind_changed.append((step.key, before.kind, step.kind))
        had = {f.name for f in before.form.fields} if before.form else set()
        new_required += [
            (step.key, f.name) for f in (step.form.fields if step.form else ()) if f.required and f.name not in had
        ]
    return SpecChanges(
        removed=tuple(removed),
        added=tuple(added),
        renamed=tuple(renamed),
        new_required=tuple(new_required),
        kind_changed=tuple(kind_changed),
    )


def _renamed_as(old: ProcessSpec, new: ProcessSpec, key: str, candidates: list[str]) -> str | None:
    """Return the added step that looks like `key` renamed: same kind and roles, between the same neighbours."""
    step = old.step(key)
    for candidate in candidates:
        twin = new.step(candidate)
        if (twin.kind, twin.role, twin.roles) == (step.kind, step.role, step.roles) and _same_place(
            old, new, key, candidate
        ):
            return candidate
    return None


def _same_place(old: ProcessSpec, new: ProcessSpec, key: str, candidate: str) -> bool:
    old_keys, new_keys = [s.key for s in old.steps], [s.key for s in new.steps]
    i, j = old_keys.index(key), new_keys.index(candidate)
    before = old_keys[i - 1] if i else None
    return before == (new_keys[j - 1] if j else None) or old_keys[i + 1 : i + 2] == new_keys[j + 1 : j + 2]


def waiting_steps(session: Session, instance_ids: list[str]) -> dict[str, set[str]]:
    """Return, per instance, the steps it waits on: its open tasks' steps and its armed timers'."""
    waiting: dict[str, set[str]] = {i: set() for i in instance_ids}
    if not instance_ids:
        return waiting
    tasks = select(HumanTask.instance_id, HumanTask.step_key).where(
        HumanTask.instance_id.in_(instance_ids), HumanTask.state.in_(sorted(ACTIVE_STATES))
    )
    timers = select(Timer.instance_id, Timer.step_key).where(
        Timer.instance_id.in_(instance_ids), Timer.fired_at.is_(None)
    )
    for instance_id, step_key in [*session.execute(tasks), *session.execute(timers)]:
        waiting[instance_id].add(step_key)
    return waiting


def _steps_done(session: Session, instance_ids: list[str]) -> dict[str, set[str]]:
    """Return, per instance, the steps it has a completed task of."""
    done: dict[str, set[str]] = {i: set() for i in instance_ids}
    query = select(HumanTask.instance_id, HumanTask.step_key).where(
        HumanTask.instance_id.in_(instance_ids), HumanTask.state == TaskState.COMPLETED
    )
    for instance_id, step_key in session.execute(query) if instance_ids else ():
        done[instance_id].add(step_key)
    return done


def report_running_instances(
    session: Session, definitions: Definitions, *, runnable: Mapping[str, frozenset[int]]
) -> list[ProcessReport]:
    """Report, per process and version that running instances are on, what the current text would mean for them.

    `runnable` holds, per process, the flows.yaml versions its loaded flow module was written for.
    """
    pinned = session.execute(
        select(ProcessInstance.process_key, ProcessInstance.definition_version, func.count())
        .where(ProcessInstance.state.in_(_ACTIVE_INSTANCE_STATES))
        .group_by(ProcessInstance.process_key, ProcessInstance.definition_version)
        .order_by(ProcessInstance.process_key, ProcessInstance.definition_version)
    ).all()
    reports = []
    for process_key, version, running in pinned:
        if process_key not in definitions.processes:
            reports.append(_process_gone(process_key, version, running))
            continue
        current = current_version_if_stored(session, definitions, process_key)
        findings = _unrunnable(session, process_key, version, running, runnable)
        if version != current:
            findings += _findings_of_move(session, definitions.process(process_key), process_key, version)
        if version != current or findings:
            reports.append(
                ProcessReport(
                    process_key=process_key,
                    from_version=version,
                    current_version=current,
                    running=running,
                    findings=tuple(findings),
                )
            )
    return reports


def _process_gone(process_key: str, version: int, running: int) -> ProcessReport:
    message = f"{process_key} is no longer in flows.yaml; its {running} running instance(s) keep version {version}"
    return ProcessReport(
        process_key=process_key,
        from_version=version,
        current_version=None,
        running=running,
        findings=(Finding(kind="process_removed", message=message, count=running),),
    )


def _unrunnable(
    session: Session, process_key: str, version: int, running: int, runnable: Mapping[str, frozenset[int]]
) -> list[Finding]:
    declared = next((v.declared_version for v in list_versions(session, process_key) if v.version == version), None)
    written_for = runnable.get(process_key, frozenset())
    if declared is not None and declared in written_for:
        return []
    code = f"written for flows.yaml version: {', '.join(map(str, sorted(written_for)))}" if written_for else "missing"
    message = (
        f"{running} instance(s) on version {version} (flows.yaml version: {declared}) cannot be run by the loaded "
        f"flow ({code}): they fail at their next step unless migrated or flow code for them is deployed"
    )
    return [Finding(kind="unrunnable", message=message, count=running)]


def _findings_of_move(session: Session, current: ProcessSpec, process_key: str, version: int) -> list[Finding]:
    try:
        old = definitions_at(session, process_key, version).process(process_key)
    except DefinitionMissing as exc:
        return [Finding(kind="version_missing", message=exc.detail)]
    ids = list(
        session.scalars(
            select(ProcessInstance.id)
            .where(
                ProcessInstance.process_key == process_key,
                ProcessInstance.definition_version == version,
                ProcessInstance.state.in_(_ACTIVE_INSTANCE_STATES),
            )
            .order_by(ProcessInstance.created_at, ProcessInstance.id)
        )
    )
    waiting = waiting_steps(session, ids)
    changes = compare_specs(old, current)
    renamed = dict(changes.renamed)
    findings = []
    for step in changes.removed:
        waiters = [i for i in ids if step in waiting[i]]
        if not waiters:
            continue
        hint = f"--map {step}={renamed[step]}" if step in renamed else f"--map {step}=<a step of the new version>"
        findings.append(
            _finding(
                "waits_on_removed_step", f"step {step} is gone; instances wait on it (migrate with {hint})", waiters
            )
        )
    for old_key, new_key in changes.renamed:
        message = f"step {old_key} looks renamed to {new_key} (same kind, role and place)"
        findings.append(_finding("renamed_step", message, [i for i in ids if old_key in waiting[i]]))
    done = _steps_done(session, ids)
    for step, name in changes.new_required:
        message = f"step {step} gains the required field {name}: instances that have not done {step} would be asked it"
        findings.append(_finding("new_required_field", message, [i for i in ids if step not in done[i]]))
    for step in changes.added:
        if step in renamed.values():
            continue
        behind = _instances_past(current, step, ids, waiting)
        if behind:
            kind = current.step(step).kind
            message = f"new {kind} step {step} comes before the step these instances wait on: a move sends them to it"
            findings.append(_finding("new_step_before", message, behind))
    return findings


def _instances_past(spec: ProcessSpec, step: str, ids: list[str], waiting: Mapping[str, set[str]]) -> list[str]:
    """Return the instances waiting on a step that comes after `step` in the spec."""
    order = {s.key: index for index, s in enumerate(spec.steps)}
    return [i for i in ids if any(order.get(w, -1) > order[step] for w in waiting[i])]


def _finding(kind: str, message: str, instance_ids: list[str]) -> Finding:
    return Finding(kind=kind, message=message, count=len(instance_ids), instance_ids=tuple(instance_ids[:_SHOWN_IDS]))
