"""Load flows.yaml into frozen, validated process definitions.

Raises (from engine/errors.py) DefinitionError when flows.yaml is unreadable or wrong, with every
problem found, and UnknownProcess / UnknownStep (DefinitionMissing, a NotFound) on a failed lookup.

Definitions are specs, shared and immutable; runtime state lives in the database.
Steps, rules, cron and durations are checked in step_definitions, rules_schema, cron_check and durations.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache, cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ecomflow.engine.definitions.business_calendar import BusinessCalendar
from ecomflow.engine.definitions.cron import cron_problems
from ecomflow.engine.definitions.durations import parse_duration
from ecomflow.engine.definitions.forms import NAME_PATTERN, FormSpec, Label, compile_form, parse_label
from ecomflow.engine.definitions.rules_section import (
    read_rules,
)  # re-exported: importers read it from here
from ecomflow.engine.definitions.sla_policy import (
    PRIORITIES,
    Escalation,
    SlaPolicy,
    read_calendar,
    read_sla,
    read_timezone,
)
from ecomflow.engine.definitions.steps import HUMAN_KINDS, STEP_KINDS, read_form, read_steps
from ecomflow.engine.definitions.stored_text import process_text
from ecomflow.engine.definitions.wave_settings import WaveSettings, read_wave
from ecomflow.engine.errors import DefinitionError, UnknownProcess, UnknownStep

__all__ = [
    "STEP_KINDS",
    "Definitions",
    "Label",
    "ProcessSpec",
    "Role",
    "Schedule",
    "StepSpec",
    "load_definitions",
    "parse_definitions",
    "parse_duration",
    "parse_process_text",
    "rework_ceiling_step",
]

# Every human step may be reworked this many rounds unless it sets `max_rounds`.
DEFAULT_MAX_ROUNDS = 5
# The built-in step every process has: a step past its max_rounds waits for the managers' decision here.
REWORK_CEILING = "rework_ceiling"
CEILING_DECISIONS = ("more_rounds", "stop")
_TOP_KEYS = ("version", "calendar", "sla", "roles", "rules", "wave", "processes")
_PROCESS_KEYS = ("title", "version", "volume", "schedule", "starters", "start_form", "steps")
# In a `starters` list: every manager role (flows.yaml `manager: true`).
MANAGERS_STARTER = "managers"
_MAX_DEPTH = 64  # nesting levels; the shipped file uses 12, and every reader below recurses
_LEAVES = (str, int, float, type(None))  # the common scalars, skipped fast by the shape walk


@dataclass(frozen=True, kw_only=True)
class Role:
    """A team role; managers see every task and may assign any."""

    key: str
    label: Label
    manager: bool = False


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """When a process starts by itself: a 5-field cron in a time zone."""

    cron: str
    timezone: str


@dataclass(frozen=True, kw_only=True)
class StepSpec:
    """One step of a process; `form` is set for human, approval and parallel steps."""

    key: str
    kind: str
    label: Label
    role: str | None = None
    roles: tuple[str, ...] = ()
    due: timedelta | None = None
    expires: timedelta | None = None
    form: FormSpec | None = None
    reject_to: str | None = None
    approves: str | None = None
    when: str | None = None
    process: str | None = None
    each: str | None = None
    at: str | None = None
    reminder: str | None = None
    priority: int = 50
    # "wall": due times count every minute (a customer waiting on a pre-sales answer); else business time.
    clock: str = "business"
    escalate: Escalation | None = None
    # Rework ceiling: past this many rounds of the step the managers decide (REWORK_CEILING) instead of a new round.
    max_rounds: int = DEFAULT_MAX_ROUNDS

    @property
    def is_human(self) -> bool:
        """Tell whether a person does this step (human, approval, parallel)."""
        return self.kind in HUMAN_KINDS


@dataclass(frozen=True, kw_only=True)
class ProcessSpec:
    """One process: its start form and its steps in order."""

    key: str
    label: Label
    version: int
    schedule: Schedule | None
    start_form: FormSpec
    steps: tuple[StepSpec, ...]
    volume: str | None = None
    # Who may start an instance: role keys, or "managers"; schedules and parent steps start it as the system.
    starters: tuple[str, ...] = (MANAGERS_STARTER,)
    # The manager role the rework-ceiling task goes to (every manager sees it).
    ceiling_role: str | None = None

    def step(self, key: str) -> StepSpec:
        """Return the step called `key` (the built-in REWORK_CEILING step too) or raise UnknownStep."""
        for step in self.steps:
            if step.key == key:
                return step
        if key == REWORK_CEILING and self.ceiling_role is not None:
            return rework_ceiling_step(self.ceiling_role)
        raise UnknownStep(self.key, key, [s.key for s in self.steps])

    @property
    def roles(self) -> tuple[str, ...]:
        """Return every role its steps use, sorted."""
        used = {s.role for s in self.steps if s.role} | {r for s in self.steps for r in s.roles}
        return tuple(sorted(used))


@dataclass(frozen=True, kw_only=True)
class Definitions:
    """Everything flows.yaml defines: roles, shared rules and processes (all read-only)."""

    version: int
    calendar: BusinessCalendar
    sla: SlaPolicy
    roles: Mapping[str, Role]
    rules: Mapping[str, Any]
    processes: Mapping[str, ProcessSpec]
    # How paid orders are batched into waves (波次) per stock location.
    wave: WaveSettings = field(default_factory=WaveSettings)
    # The mapping the file was read into: each process's stored text is cut from it (stored_text.py).
    source: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def process_texts(self) -> Mapping[str, str]:
        """Return each process's stored text: its own section and the shared sections it depends on."""
        return MappingProxyType({key: process_text(self.source, key) for key in self.processes})

    @property
    def timezone(self) -> str:
        """Return the team's time zone (the calendar's)."""
        return self.calendar.timezone

    def process(self, key: str) -> ProcessSpec:
        """Return the process called `key` or raise UnknownProcess."""
        try:
            return self.processes[key]
        except KeyError:
            raise UnknownProcess(key, list(self.processes)) from None

    @property
    def manager_roles(self) -> frozenset[str]:
        """Return the roles that see and assign every task."""
        return frozenset(key for key, role in self.roles.items() if role.manager)


# ── top level ────────────────────────────────────────────────────────────────────
def parse_definitions(raw: Any) -> Definitions:
    """Validate an already-loaded flows.yaml mapping; raise DefinitionError listing every problem."""
    if not isinstance(raw, Mapping):
        raise DefinitionError([f"(top level): expected a mapping, got {type(raw).__name__}"])
    problems: list[str] = _shape_problems(raw)
    if problems:
        raise DefinitionError(problems)  # every reader below would recurse without end (or too deep)
    for key in raw:
        if key not in _TOP_KEYS:
            problems.append(f"{key}: unknown top-level key (allowed: {', '.join(_TOP_KEYS)})")
    version = raw.get("version")
    if not _is_positive_int(version):
        problems.append(f"version: expected a positive integer, got {version!r}")
    calendar = read_calendar(raw.get("calendar"), problems)
    roles = _read_roles(raw.get("roles"), problems)
    sla = read_sla(raw.get("sla"), roles, problems)
    rules = read_rules(raw.get("rules"), roles, problems)
    wave = read_wave(raw.get("wave"), problems)
    processes = _read_processes(raw.get("processes"), roles, calendar.timezone, sla, problems)
    if problems:
        raise DefinitionError(problems)
    return Definitions(
        version=version,
        calendar=calendar,
        sla=sla,
        roles=MappingProxyType(roles),
        rules=rules,
        processes=MappingProxyType(processes),
        wave=wave,
        source=raw,
    )


def parse_process_text(raw: Any, *, calendar: BusinessCalendar) -> Definitions:
    """Validate a stored process text (shared sections and one process) on the given calendar; raise DefinitionError."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("processes"), Mapping) or len(raw["processes"]) != 1:
        raise DefinitionError(["(stored text): expected roles, sla, rules and exactly one process"])
    problems: list[str] = _shape_problems(raw)
    if problems:
        raise DefinitionError(problems)
    ((key, section),) = raw["processes"].items()
    roles = _read_roles(raw.get("roles"), problems)
    sla = read_sla(raw.get("sla"), roles, problems)
    rules = read_rules(raw.get("rules"), roles, problems)
    # The children it starts were defined when the text was stored; a child start checks the current file.
    steps = section.get("steps") if isinstance(section, Mapping) else None
    children = {s.get("process") for s in steps if isinstance(s, Mapping)} if isinstance(steps, list) else set()
    known = frozenset({key} | {child for child in children if isinstance(child, str)})
    process = _read_process(
        key, section, roles=roles, known=known, timezone=calendar.timezone, sla=sla, problems=problems
    )
    if problems or process is None:
        raise DefinitionError(problems or [f"processes.{key}: unreadable"])
    return Definitions(
        version=1,
        calendar=calendar,
        sla=sla,
        roles=MappingProxyType(roles),
        rules=rules,
        processes=MappingProxyType({key: process}),
        source=raw,
    )


def _read_roles(raw: Any, problems: list[str]) -> dict[str, Role]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append("roles: expected a non-empty mapping of role key to {zh, en, manager}")
        return {}
    roles = {}
    for key, spec in raw.items():
        where = f"roles.{key}"
        if not isinstance(key, str) or not NAME_PATTERN.match(key):
            problems.append(f"{where}: role keys are lower_snake_case")
            continue
        label = parse_label(spec, where, problems)
        if not isinstance(spec, Mapping):
            continue
        for extra in set(spec) - {"zh", "en", "manager"}:
            problems.append(f"{where}: unknown key {extra!r} (allowed: zh, en, manager)")
        manager = spec.get("manager", False)
        if not isinstance(manager, bool):
            problems.append(f"{where}.manager: expected true or false, got {manager!r}")
        if label is not None:
            roles[key] = Role(key=key, label=label, manager=manager is True)
    return roles


def _read_processes(
    raw: Any, roles: Mapping[str, Role], timezone: str, sla: SlaPolicy, problems: list[str]
) -> dict[str, ProcessSpec]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append("processes: expected a non-empty mapping of process key to process")
        return {}
    known = frozenset(k for k in raw if isinstance(k, str))
    processes = {}
    for key, spec in raw.items():
        if not isinstance(key, str) or not NAME_PATTERN.match(key):
            problems.append(f"processes.{key}: process keys are lower_snake_case")
            continue
        process = _read_process(key, spec, roles=roles, known=known, timezone=timezone, sla=sla, problems=problems)
        if process is not None:
            processes[key] = process
    _check_child_cycles(processes, problems)
    return processes


def _read_process(
    key: str,
    raw: Any,
    *,
    roles: Mapping[str, Role],
    known: frozenset[str],
    timezone: str,
    sla: SlaPolicy,
    problems: list[str],
) -> ProcessSpec | None:
    where = f"processes.{key}"
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping with title, version, start_form and steps")
        return None
    before = len(problems)
    for extra in raw:
        if extra not in _PROCESS_KEYS:
            problems.append(f"{where}: unknown key {extra!r} (allowed: {', '.join(_PROCESS_KEYS)})")
    label = parse_label(raw.get("title"), f"{where}.title", problems)
    version = raw.get("version")
    if not _is_positive_int(version):
        problems.append(f"{where}.version: expected a positive integer, got {version!r}")
    volume = raw.get("volume")
    if volume is not None and not isinstance(volume, str):
        problems.append(f"{where}.volume: expected a short note such as high, got {volume!r}")
    schedule = _read_schedule(raw.get("schedule"), f"{where}.schedule", timezone, problems)
    starters = _read_starters(raw.get("starters", [MANAGERS_STARTER]), f"{where}.starters", roles, problems)
    start_form = None
    if "start_form" not in raw:
        problems.append(f"{where}.start_form: required (use {{fields: {{}}}} for a process without params)")
    else:
        start_form = read_form(raw["start_form"], f"{where}.start_form", approval=False, problems=problems)
    step_kwargs = read_steps(key, raw.get("steps"), start_form, roles=roles, known=known, problems=problems)
    for kwargs in step_kwargs:
        if kwargs["kind"] in HUMAN_KINDS and "escalate" not in kwargs:
            kwargs["escalate"] = sla.escalate  # the flows.yaml-wide default unless the step says otherwise
    steps = tuple(StepSpec(**kwargs) for kwargs in step_kwargs)
    if len(problems) > before:
        return None
    managers = [role.key for role in roles.values() if role.manager]
    return ProcessSpec(
        key=key,
        label=label,
        version=version,
        schedule=schedule,
        start_form=start_form,
        steps=steps,
        volume=volume,
        starters=starters,
        ceiling_role=sla.escalate.to if sla.escalate and sla.escalate.to in roles else next(iter(managers), None),
    )


@cache
def rework_ceiling_step(role: str) -> StepSpec:
    """Return the built-in step where managers decide on work past its step's max_rounds: more rounds, or stop."""
    form = compile_form(
        {
            "fields": {
                "decision": {
                    "type": "enum",
                    "values": list(CEILING_DECISIONS),
                    "required": True,
                    "label": {"zh": "处理决定 (再给几轮/终止)", "en": "Decision (more rounds or stop)"},
                },
                "comment": {"type": "text", "required": True, "label": {"zh": "说明", "en": "Comment"}},
            }
        },
        where=f"(built-in step {REWORK_CEILING})",
    )
    return StepSpec(
        key=REWORK_CEILING,
        kind="human",
        label=Label(zh="返工超过上限：主管决定", en="Rework ceiling reached: managers decide"),
        role=role,
        due=timedelta(days=1),
        form=form,
        priority=PRIORITIES["high"],
        escalate=None,
    )


def _read_starters(raw: Any, where: str, roles: Mapping[str, Role], problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: expected a non-empty list of role keys (or {MANAGERS_STARTER!r})")
        return ()
    allowed = [*roles, MANAGERS_STARTER]
    for starter in raw:
        if starter not in allowed:
            problems.append(
                f"{where}: unknown starter {starter!r} (a role key or {MANAGERS_STARTER!r}: {', '.join(allowed)})"
            )
    if len(set(map(str, raw))) != len(raw):
        problems.append(f"{where}: starters must be unique")
    return tuple(str(starter) for starter in raw)


def _read_schedule(raw: Any, where: str, timezone: str, problems: list[str]) -> Schedule | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("cron"), str):
        problems.append(f"{where}: expected null or {{cron: '<5 fields>', timezone: <IANA name>}}")
        return None
    for extra in set(raw) - {"cron", "timezone"}:
        problems.append(f"{where}: unknown key {extra!r} (allowed: cron, timezone)")
    problems.extend(f"{where}.cron: {problem}" for problem in cron_problems(raw["cron"]))
    zone = read_timezone(raw.get("timezone", timezone), f"{where}.timezone", problems)
    return Schedule(cron=raw["cron"], timezone=zone)


def _check_child_cycles(processes: Mapping[str, ProcessSpec], problems: list[str]) -> None:
    children = {key: [s.process for s in p.steps if s.kind == "child"] for key, p in processes.items()}
    reported: set[frozenset[str]] = set()

    def visit(key: str, trail: tuple[str, ...]) -> None:
        for child in children.get(key, ()):
            if child not in trail:
                visit(child, (*trail, child))
                continue
            loop = trail[trail.index(child) :]
            if frozenset(loop) not in reported:
                reported.add(frozenset(loop))
                problems.append(f"processes.{child}: child processes form a cycle ({' → '.join((*loop, child))})")

    for key in processes:
        visit(key, (key,))


def _shape_problems(raw: Any) -> list[str]:
    """Locate mappings and lists that contain themselves (YAML `&a [*a]`) or nest deeper than _MAX_DEPTH."""
    problems: list[str] = []
    height: dict[int, int | None] = {id(raw): None}  # None while being walked, then the levels it holds
    # Frames: the container, the key it sits under, its (key, child) iterator and the tallest level seen below it.
    stack: list[tuple[Any, Any, Iterator[tuple[Any, Any]], list[int]]] = [(raw, None, _children(raw), [1])]
    while stack:
        node, _, children, tallest = stack[-1]
        for key, child in children:
            if isinstance(child, _LEAVES) or not isinstance(child, (Mapping, list)):
                continue
            levels = height.get(id(child), -1)
            if levels == -1 and len(stack) < _MAX_DEPTH:
                height[id(child)] = None
                stack.append((child, key, _children(child), [1]))
                break
            if levels is None:
                problems.append(
                    f"{_location(stack, key)}: refers to a mapping or list that contains it (a recursive YAML alias)"
                )
            elif levels == -1 or len(stack) + levels > _MAX_DEPTH:
                problems.append(f"{_location(stack, key)}: nested more than {_MAX_DEPTH} levels deep")
            else:
                tallest[0] = max(tallest[0], 1 + levels)
        else:
            stack.pop()
            height[id(node)] = tallest[0]
            if stack:
                stack[-1][3][0] = max(stack[-1][3][0], 1 + tallest[0])
    return problems


def _children(node: Any) -> Iterator[tuple[Any, Any]]:
    return iter(node.items() if isinstance(node, Mapping) else enumerate(node))


def _location(stack: list[tuple[Any, Any, Any, Any]], key: Any) -> str:
    where = ""
    for (parent, _, _, _), (_, step, _, _) in zip(stack, [*stack[1:], (None, key, None, None)], strict=True):
        where += f"[{step}]" if isinstance(parent, list) else f".{step}" if where else str(step)
    return where


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# ── files ────────────────────────────────────────────────────────────────────────
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that records duplicate mapping keys instead of keeping the last silently."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # `<<: *anchor` (flows.yaml's image rules): its keys may be overridden, not duplicated
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable):
                if key in seen:
                    self.duplicates.append(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_definitions(path: str | Path) -> Definitions:
    """Read and validate a flows.yaml file; raise DefinitionError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([f"{path}: cannot read the definitions file ({exc})"]) from None
    loader = _StrictLoader(text)
    try:
        raw = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise DefinitionError([f"{path}: not valid YAML: {exc}"]) from None
    except RecursionError:
        raise DefinitionError([f"{path}: not valid YAML: nested too deeply"]) from None
    finally:
        loader.dispose()
    problems = [f"{path}: {duplicate}" for duplicate in loader.duplicates]
    try:
        definitions = parse_definitions(raw)
    except DefinitionError as exc:
        raise DefinitionError(problems + exc.problems) from None
    if problems:
        raise DefinitionError(problems)
    return definitions
