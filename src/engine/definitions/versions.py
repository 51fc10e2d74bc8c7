"""Stored definition versions: each process's text kept by number, and the one door to an instance's pinned spec.

A version is a process's stored text (stored_text.py: its section plus `roles`, `sla`, `rules`)
under a number: 1, 2, 3 … per process. The first stored version of a process takes its
flows.yaml `version:` (so instances started before versions were stored find theirs); each
later change of the text takes the next number. `ecomflow migrate` and `ecomflow up` store the
loaded file's versions; a start stores its text too if nobody did, so no instance starts unpinned.

Every reader of a running instance's definition asks here (`definitions_of_instance`,
`spec_of_instance`, `step_of_task`): forms, due times, rules, steps and four-eyes all come from
the version the instance started on, never from whatever flows.yaml says today.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import yaml
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import DefinitionVersion, HumanTask, ProcessInstance
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.definitions.business_calendar import BusinessCalendar
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import Definitions, ProcessSpec, StepSpec, parse_process_text
from ecomflow.engine.definitions.stored_text import text_sha256
from ecomflow.engine.errors import VersionMissing

__all__ = [
    "StoredVersion",
    "count_running_by_version",
    "current_version",
    "current_version_if_stored",
    "definitions_at",
    "definitions_of_instance",
    "list_versions",
    "spec_of_instance",
    "step_of_task",
    "store_versions",
]

# Two writers may race for the next number; each retry re-reads the highest one.
_STORE_ATTEMPTS = 5


@dataclass(frozen=True, kw_only=True)
class StoredVersion:
    """A stored definition version without its text; `new` when this call stored it."""

    process_key: str
    version: int
    declared_version: int
    sha256: str
    stored_at: datetime
    new: bool = False


def store_versions(session: Session, definitions: Definitions) -> list[StoredVersion]:
    """Store each process's current text unless stored already; return its version per process, file order."""
    return [_store_text(session, definitions, key) for key in definitions.processes]


def current_version(session: Session, definitions: Definitions, process_key: str) -> int:
    """Return the stored version number of the process as `definitions` hold it, storing it if missing."""
    return _store_text(session, definitions, process_key).version


def current_version_if_stored(session: Session, definitions: Definitions, process_key: str) -> int | None:
    """Return the stored version number of the process as `definitions` hold it, or None if not stored yet."""
    found = _find_by_sha(session, process_key, text_sha256(definitions.process_texts[process_key]))
    return None if found is None else found.version


def list_versions(session: Session, process_key: str) -> list[StoredVersion]:
    """Return every stored version of a process, oldest first."""
    rows = session.execute(
        select(
            DefinitionVersion.process_key,
            DefinitionVersion.version,
            DefinitionVersion.declared_version,
            DefinitionVersion.sha256,
            DefinitionVersion.stored_at,
        )
        .where(DefinitionVersion.process_key == process_key)
        .order_by(DefinitionVersion.version)
    )
    return [StoredVersion(**row._mapping) for row in rows]


def count_running_by_version(session: Session, process_key: str) -> dict[int, int]:
    """Return how many running instances of the process are pinned to each version."""
    rows = session.execute(
        select(ProcessInstance.definition_version, func.count())
        .where(ProcessInstance.process_key == process_key, ProcessInstance.state.in_(("running", "waiting")))
        .group_by(ProcessInstance.definition_version)
    )
    return dict(rows.all())


def definitions_at(session: Session, process_key: str, version: int) -> Definitions:
    """Return the definitions of one stored version (this process, its roles, sla, rules) on today's calendar."""
    sha = session.scalar(
        select(DefinitionVersion.sha256).where(
            DefinitionVersion.process_key == process_key, DefinitionVersion.version == version
        )
    )
    if sha is None:
        raise VersionMissing(process_key, version, [v.version for v in list_versions(session, process_key)])
    return _parsed(session, sha=sha, process_key=process_key)


def definitions_of_instance(session: Session, instance: ProcessInstance) -> Definitions:
    """Return the definitions the instance is pinned to: the version it started on or was migrated to."""
    return definitions_at(session, instance.process_key, instance.definition_version)


def spec_of_instance(session: Session, instance: ProcessInstance) -> ProcessSpec:
    """Return the process spec the instance is pinned to."""
    return definitions_of_instance(session, instance).process(instance.process_key)


def step_of_task(session: Session, task: HumanTask) -> StepSpec:
    """Return the step spec of a task as its instance's pinned version defines it; raise DefinitionMissing if none."""
    pinned = session.execute(
        select(DefinitionVersion.sha256, ProcessInstance.definition_version)
        .select_from(ProcessInstance)
        .outerjoin(
            DefinitionVersion,
            and_(
                DefinitionVersion.process_key == ProcessInstance.process_key,
                DefinitionVersion.version == ProcessInstance.definition_version,
            ),
        )
        .where(ProcessInstance.id == task.instance_id)
    ).first()
    if pinned is None or pinned.sha256 is None:
        version = pinned.definition_version if pinned is not None else 0
        raise VersionMissing(task.process_key, version, [v.version for v in list_versions(session, task.process_key)])
    return (
        _parsed(session, sha=pinned.sha256, process_key=task.process_key).process(task.process_key).step(task.step_key)
    )


# ── storing ─────────────────────────────────────────────────────────────────────
def _store_text(session: Session, definitions: Definitions, process_key: str) -> StoredVersion:
    spec = definitions.process(process_key)
    text = definitions.process_texts[process_key]
    sha = text_sha256(text)
    for _ in range(_STORE_ATTEMPTS):
        found = _find_by_sha(session, process_key, sha)
        if found is not None:
            return found
        highest = session.scalar(
            select(func.max(DefinitionVersion.version)).where(DefinitionVersion.process_key == process_key)
        )
        row = DefinitionVersion(
            process_key=process_key,
            version=spec.version if highest is None else highest + 1,
            declared_version=spec.version,
            sha256=sha,
            text=text,
        )
        if insert_unless_exists(session, row):
            return _as_stored(row, new=True)
    raise RuntimeError(f"could not store a version of {process_key} after {_STORE_ATTEMPTS} attempts")


def _find_by_sha(session: Session, process_key: str, sha: str) -> StoredVersion | None:
    row = session.scalar(
        select(DefinitionVersion).where(DefinitionVersion.process_key == process_key, DefinitionVersion.sha256 == sha)
    )
    return None if row is None else _as_stored(row)


def _as_stored(row: DefinitionVersion, *, new: bool = False) -> StoredVersion:
    return StoredVersion(
        process_key=row.process_key,
        version=row.version,
        declared_version=row.declared_version,
        sha256=row.sha256,
        stored_at=row.stored_at,
        new=new,
    )


# ── parsing, once per text ───────────────────────────────────────────────────────
# A stored text never changes, so its parse is kept by hash (and the calendar it was read on).
_parsed_texts: dict[tuple[str, BusinessCalendar], Definitions] = {}
_parsed_lock = threading.Lock()


def _parsed(session: Session, *, sha: str, process_key: str) -> Definitions:
    calendar = get_definitions().calendar
    cached = _parsed_texts.get((sha, calendar))
    if cached is not None:
        return cached
    text = session.scalar(
        select(DefinitionVersion.text).where(
            DefinitionVersion.process_key == process_key, DefinitionVersion.sha256 == sha
        )
    )
    definitions = parse_process_text(yaml.safe_load(text), calendar=calendar)
    with _parsed_lock:
        _parsed_texts[(sha, calendar)] = definitions
    return definitions
