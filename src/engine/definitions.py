"""Load flows.yaml into frozen, validated process definitions.

DefinitionError      flows.yaml is unreadable or wrong; `.problems` lists every problem found
UnknownProcess       (KeyError) no process with that key
UnknownStep          (KeyError) the process has no step with that key

Definitions are specs, shared and immutable; runtime state lives in the database.
"""
from __future__ import annotations

import math
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from jsonschema import Draft202012Validator

from engine.forms import NAME_PATTERN, FormDefinitionError, FormSpec, Label, compile_form, parse_label

__all__ = [
    "STEP_KINDS", "DefinitionError", "Definitions", "Label", "ProcessSpec", "Role", "Schedule", "StepSpec",
    "UnknownProcess", "UnknownStep", "default_definitions_path", "load_definitions", "parse_definitions",
    "parse_duration",
]

STEP_KINDS = ("human", "approval", "auto", "timer", "parallel", "child")
HUMAN_KINDS = frozenset({"human", "approval", "parallel"})
_STEP_COMMON_KEYS = frozenset({"key", "kind", "title", "when"})
_STEP_KIND_KEYS = {
    "human": frozenset({"role", "due", "expires", "form", "reminder"}),
    "approval": frozenset({"role", "due", "expires", "form", "reject_to", "approves", "reminder"}),
    "parallel": frozenset({"roles", "due", "expires", "form", "reminder"}),
    "auto": frozenset(),
    "timer": frozenset({"at"}),
    "child": frozenset({"process", "each"}),
}
_TOP_KEYS = ("version", "calendar", "roles", "rules", "processes")
_PROCESS_KEYS = ("title", "version", "volume", "schedule", "start_form", "steps")
_DURATION = re.compile(r"^([1-9][0-9]*)([mhd])$")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class DefinitionError(Exception):
    """flows.yaml is wrong; `.problems` holds one located sentence per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class _LookupFailed(KeyError):
    """A KeyError whose str() is its sentence, not the sentence's repr."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownProcess(_LookupFailed):
    """No process with this key is defined."""

    def __init__(self, key: str, known: list[str]) -> None:
        super().__init__(f"unknown process {key!r} (defined: {', '.join(known)})")
        self.key = key


class UnknownStep(_LookupFailed):
    """The process has no step with this key."""

    def __init__(self, process: str, key: str, known: list[str]) -> None:
        super().__init__(f"process {process!r} has no step {key!r} (steps: {', '.join(known)})")
        self.process, self.key = process, key


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

    def step(self, key: str) -> StepSpec:
        """Return the step called `key` or raise UnknownStep."""
        for step in self.steps:
            if step.key == key:
                return step
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
    timezone: str
    roles: Mapping[str, Role]
    rules: Mapping[str, Any]
    processes: Mapping[str, ProcessSpec]

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


def parse_duration(text: str) -> timedelta:
    """Parse "10m", "8h" or "5d" into a timedelta."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid duration {text!r}: expected a positive <int>m, <int>h or <int>d, e.g. 10m, 8h, 5d")
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


# ── cron ─────────────────────────────────────────────────────────────────────────
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day-of-month", 1, 31, ()),
                ("month", 1, 12, _MONTHS), ("day-of-week", 0, 7, _DAYS))
_CRON_ITEM = re.compile(r"^(?:\*|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:/([0-9]+))?$")


def _cron_problems(expr: str) -> list[str]:
    parts = expr.split()
    if len(parts) != 5:
        return [f"cron {expr!r} must have 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"]
    return [f"cron {expr!r}: {name} field {text!r} is not valid (values {low}-{high})"
            for text, (name, low, high, names) in zip(parts, _CRON_FIELDS)
            if not all(_cron_item_ok(item, low, high, names) for item in text.split(","))]


def _cron_item_ok(item: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    match = _CRON_ITEM.match(item)
    if match is None:
        return False
    start, end, step = match.groups()
    values = []
    for token in (start, end):
        if token is None:
            continue
        if token.isdigit():
            value = int(token)
        elif token.lower() in names:
            value = names.index(token.lower()) + low
        else:
            return False
        if not low <= value <= high:
            return False
        values.append(value)
    return (len(values) < 2 or values[0] <= values[1]) and (step is None or int(step) > 0)


# ── rules ────────────────────────────────────────────────────────────────────────
_FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
_DURATION_SCHEMA = {"type": "string", "pattern": _DURATION.pattern}
_POSITIVE_INT = {"type": "integer", "minimum": 1}


_TEXT = {"type": "string", "minLength": 1}
_HHMM = "([01][0-9]|2[0-3]):[0-5][0-9]"


def _strict(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


# Rules the engine reads; extra rules are allowed (flows may read their own).
RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["banned_terms", "price_policy", "owner_approval_above", "currency", "sms", "listing", "returns",
                 "target_weights"],
    "properties": {
        "banned_terms": {"type": "array", "items": _TEXT, "minItems": 1, "uniqueItems": True},
        "price_policy": _strict(default={"enum": ["unified", "flexible"]},
                                max_online_discount={"type": "number", "minimum": 0, "exclusiveMaximum": 1}),
        "owner_approval_above": {"type": "number", "exclusiveMinimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "sms": _strict(max_chars=_POSITIVE_INT, opt_out=_TEXT),
        "listing": _strict(title_max_bytes=_POSITIVE_INT, min_main_images=_POSITIVE_INT),
        "returns": _strict(no_reason_days=_POSITIVE_INT, excluded_categories={"type": "array", "items": _TEXT},
                           parcel_wait=_DURATION_SCHEMA, refund_within=_DURATION_SCHEMA,
                           bad_rating_at_most={"type": "integer", "minimum": 1, "maximum": 5}),
        "target_weights": _strict(months={"type": "array", "items": _FRACTION, "minItems": 3, "maxItems": 3},
                                  departments={"type": "object", "additionalProperties": _FRACTION}),
        "peak_hours": {"type": "array", "items": {"type": "string", "pattern": f"^{_HHMM}-{_HHMM}$"}},
    },
}
_RULES_VALIDATOR = Draft202012Validator(RULES_SCHEMA)


def _read_rules(raw: Any, roles: Mapping[str, Role], problems: list[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        problems.append(f"rules: expected a mapping of rule name to parameters, got {type(raw).__name__}")
        return MappingProxyType({})
    errors = sorted(_RULES_VALIDATOR.iter_errors(raw), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        problems.append(f"{'.'.join(['rules', *map(str, error.absolute_path)])}: {error.message}")
    if not errors:
        weights = raw["target_weights"]
        for name, values in (("months", weights["months"]), ("departments", list(weights["departments"].values()))):
            if not math.isclose(sum(values), 1.0, abs_tol=1e-9):
                problems.append(f"rules.target_weights.{name}: weights must sum to 1, they sum to {sum(values):g}")
        for role in weights["departments"]:
            if role not in roles:
                problems.append(f"rules.target_weights.departments.{role}: not a declared role")
    return _freeze(raw)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


# ── top level ────────────────────────────────────────────────────────────────────
def parse_definitions(raw: Any) -> Definitions:
    """Validate an already-loaded flows.yaml mapping; raise DefinitionError listing every problem."""
    if not isinstance(raw, Mapping):
        raise DefinitionError([f"(top level): expected a mapping, got {type(raw).__name__}"])
    problems: list[str] = []
    for key in raw:
        if key not in _TOP_KEYS:
            problems.append(f"{key}: unknown top-level key (allowed: {', '.join(_TOP_KEYS)})")
    version = raw.get("version")
    if not _is_positive_int(version):
        problems.append(f"version: expected a positive integer, got {version!r}")
    timezone = _read_calendar(raw.get("calendar"), problems)
    roles = _read_roles(raw.get("roles"), problems)
    rules = _read_rules(raw.get("rules"), roles, problems)
    processes = _read_processes(raw.get("processes"), roles, timezone, problems)
    if problems:
        raise DefinitionError(problems)
    return Definitions(version=version, timezone=timezone, roles=MappingProxyType(roles), rules=rules,
                       processes=MappingProxyType(processes))


def _read_calendar(raw: Any, problems: list[str]) -> str:
    if not isinstance(raw, Mapping) or "timezone" not in raw:
        problems.append("calendar: expected a mapping with a timezone, e.g. {timezone: Asia/Shanghai}")
        return "UTC"
    for key in raw:
        if key != "timezone":
            problems.append(f"calendar: unknown key {key!r} (allowed: timezone)")
    return _read_timezone(raw["timezone"], "calendar.timezone", problems)


def _read_timezone(value: Any, where: str, problems: list[str]) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, TypeError, ValueError):
        problems.append(f"{where}: unknown time zone {value!r} (expected an IANA name such as Asia/Shanghai)")
        return "UTC"
    return value


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


def _read_processes(raw: Any, roles: Mapping[str, Role], timezone: str,
                    problems: list[str]) -> dict[str, ProcessSpec]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append("processes: expected a non-empty mapping of process key to process")
        return {}
    known = frozenset(k for k in raw if isinstance(k, str))
    processes = {}
    for key, spec in raw.items():
        if not isinstance(key, str) or not NAME_PATTERN.match(key):
            problems.append(f"processes.{key}: process keys are lower_snake_case")
            continue
        process = _read_process(key, spec, roles=roles, known=known, timezone=timezone, problems=problems)
        if process is not None:
            processes[key] = process
    _check_child_cycles(processes, problems)
    return processes


def _read_process(key: str, raw: Any, *, roles: Mapping[str, Role], known: frozenset[str], timezone: str,
                  problems: list[str]) -> ProcessSpec | None:
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
    start_form = None
    if "start_form" not in raw:
        problems.append(f"{where}.start_form: required (use {{fields: {{}}}} for a process without params)")
    else:
        start_form = _compile(raw["start_form"], f"{where}.start_form", approval=False, problems=problems)
    steps = _read_steps(key, raw.get("steps"), start_form, roles=roles, known=known, problems=problems)
    if len(problems) > before:
        return None
    return ProcessSpec(key=key, label=label, version=version, schedule=schedule, start_form=start_form,
                       steps=steps, volume=volume)


def _read_schedule(raw: Any, where: str, timezone: str, problems: list[str]) -> Schedule | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("cron"), str):
        problems.append(f"{where}: expected null or {{cron: '<5 fields>', timezone: <IANA name>}}")
        return None
    for extra in set(raw) - {"cron", "timezone"}:
        problems.append(f"{where}: unknown key {extra!r} (allowed: cron, timezone)")
    problems.extend(f"{where}.cron: {problem}" for problem in _cron_problems(raw["cron"]))
    zone = _read_timezone(raw.get("timezone", timezone), f"{where}.timezone", problems)
    return Schedule(cron=raw["cron"], timezone=zone)


def _compile(raw: Any, where: str, *, approval: bool, problems: list[str]) -> FormSpec | None:
    try:
        return compile_form(raw, where=where, approval=approval)
    except FormDefinitionError as exc:
        problems.extend(exc.problems)
        return None


# ── steps ────────────────────────────────────────────────────────────────────────
def _read_steps(process: str, raw: Any, start_form: FormSpec | None, *, roles: Mapping[str, Role],
                known: frozenset[str], problems: list[str]) -> tuple[StepSpec, ...]:
    where = f"processes.{process}.steps"
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: expected a non-empty list of steps")
        return ()
    parsed: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
    for index, spec in enumerate(raw):
        step = _read_step(index, spec, where, roles=roles, known=known, problems=problems)
        if step is None:
            continue
        if any(step["key"] == other["key"] for other, _ in parsed):
            problems.append(f"{where}.{step['key']}: duplicate step key (step keys are unique per process)")
            continue
        parsed.append((step, spec))
    # Field references are only checked once every form compiled, to avoid follow-on noise.
    forms_ok = start_form is not None and all(s.get("form") for s, _ in parsed if s["kind"] in HUMAN_KINDS)
    keys = [step["key"] for step, _ in parsed]
    fields = {f.name: f for f in start_form.fields} if start_form is not None else {}
    steps = []
    for index, (step, spec) in enumerate(parsed):
        earlier = {s["key"]: s for s, _ in parsed[:index]}
        here = f"{where}.{step['key']}"
        for ref in ("reject_to", "approves"):
            _check_step_ref(step.get(ref), ref, here, process, keys, earlier, problems)
        if step["kind"] == "approval" and "approves" not in spec:
            # Four-eyes default: the nearest earlier step a person did the work in.
            step["approves"] = next((s["key"] for s, _ in reversed(parsed[:index]) if s["kind"] == "human"), None)
        if forms_ok:
            _check_field_ref(step.get("at"), "at", here, fields, ("date", "datetime"), problems)
            _check_field_ref(step.get("each"), "each", here, fields, ("list",), problems)
        if step.get("form") is not None:
            fields.update({f.name: f for f in step["form"].fields})
        steps.append(StepSpec(**step))
    return tuple(steps)


def _read_step(index: int, raw: Any, steps_where: str, *, roles: Mapping[str, Role], known: frozenset[str],
               problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{steps_where}[{index}]: expected a mapping with key, kind and title")
        return None
    key = raw.get("key")
    if not isinstance(key, str) or not NAME_PATTERN.match(key):
        problems.append(f"{steps_where}[{index}].key: expected a lower_snake_case step key, got {key!r}")
        return None
    where = f"{steps_where}.{key}"
    kind = raw.get("kind")
    if kind not in STEP_KINDS:
        problems.append(f"{where}.kind: unknown kind {kind!r} (expected one of {', '.join(STEP_KINDS)})")
        return None
    allowed = _STEP_COMMON_KEYS | _STEP_KIND_KEYS[kind]
    for extra in raw:
        if extra not in allowed:
            allowed_text = ", ".join(sorted(allowed))
            problems.append(f"{where}: {extra!r} is not allowed on {kind} steps (allowed: {allowed_text})")
    label = parse_label(raw.get("title"), f"{where}.title", problems)
    step: dict[str, Any] = {"key": key, "kind": kind, "label": label}
    if kind in ("human", "approval"):
        role = raw.get("role")
        if role is None:
            problems.append(f"{where}.role: {kind} steps need a role")
        elif role not in roles:
            problems.append(f"{where}.role: unknown role {role!r} (declared: {', '.join(roles)})")
        step["role"] = role
    if kind == "parallel":
        step["roles"] = _read_step_roles(raw.get("roles"), f"{where}.roles", roles, problems)
    for name in ("due", "expires"):
        if raw.get(name) is not None:
            step[name] = _read_duration(raw[name], f"{where}.{name}", problems)
    if kind in HUMAN_KINDS:
        step["form"] = _compile(raw.get("form"), f"{where}.form", approval=kind == "approval", problems=problems)
    for name in ("when", "at", "each", "reject_to", "approves", "reminder", "process"):
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            problems.append(f"{where}.{name}: expected a non-empty string, got {value!r}")
        elif name in allowed:
            step[name] = value
    if kind == "timer" and not raw.get("at"):
        problems.append(f"{where}.at: a timer step needs 'at' (the field holding the time, or a description)")
    if kind == "child":
        child = raw.get("process")
        if child is None:
            problems.append(f"{where}.process: a child step needs the process to start")
        elif child not in known:
            problems.append(f"{where}.process: unknown process {child!r} (defined: {', '.join(sorted(known))})")
    reminder = raw.get("reminder")
    if isinstance(reminder, str) and reminder != "daily" and not _DURATION.match(reminder):
        problems.append(f"{where}.reminder: expected 'daily' or a duration such as 4h, got {reminder!r}")
    return step


def _read_step_roles(raw: Any, where: str, roles: Mapping[str, Role], problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: a parallel step needs a non-empty list of roles")
        return ()
    for role in raw:
        if role not in roles:
            problems.append(f"{where}: unknown role {role!r} (declared: {', '.join(roles)})")
    if len(set(map(str, raw))) != len(raw):
        problems.append(f"{where}: roles must be unique")
    return tuple(raw)


def _read_duration(value: Any, where: str, problems: list[str]) -> timedelta | None:
    try:
        return parse_duration(value)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _check_step_ref(target: Any, ref: str, where: str, process: str, keys: list[str],
                    earlier: Mapping[str, Mapping[str, Any]], problems: list[str]) -> None:
    if not isinstance(target, str):
        return
    if target not in keys:
        problems.append(f"{where}.{ref}: process {process!r} has no step {target!r} (steps: {', '.join(keys)})")
    elif target not in earlier:
        problems.append(f"{where}.{ref}: step {target!r} does not come before this step")
    elif earlier[target]["kind"] not in HUMAN_KINDS:
        problems.append(f"{where}.{ref}: step {target!r} is of kind {earlier[target]['kind']}; "
                        f"{ref} must name a step a person does (human, approval or parallel)")


def _check_field_ref(name: Any, ref: str, where: str, fields: Mapping[str, Any], types: tuple[str, ...],
                     problems: list[str]) -> None:
    # Free-text descriptions are allowed; a bare identifier must name a real field.
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return
    field = fields.get(name)
    if field is None:
        problems.append(f"{where}.{ref}: {name!r} is not a field of the start form or of an earlier step's form")
    elif field.type not in types:
        problems.append(f"{where}.{ref}: field {name!r} is a {field.type}; expected {' or '.join(types)}")


def _check_child_cycles(processes: Mapping[str, ProcessSpec], problems: list[str]) -> None:
    children = {key: [s.process for s in p.steps if s.kind == "child"] for key, p in processes.items()}
    reported: set[frozenset[str]] = set()

    def visit(key: str, trail: tuple[str, ...]) -> None:
        for child in children.get(key, ()):
            if child not in trail:
                visit(child, (*trail, child))
                continue
            loop = trail[trail.index(child):]
            if frozenset(loop) not in reported:
                reported.add(frozenset(loop))
                problems.append(f"processes.{child}: child processes form a cycle ({' → '.join((*loop, child))})")

    for key in processes:
        visit(key, (key,))


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# ── files ────────────────────────────────────────────────────────────────────────
class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that records duplicate mapping keys instead of keeping the last silently."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
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


def default_definitions_path() -> Path:
    """Return the flows.yaml at the repository root."""
    return Path(__file__).resolve().parents[2] / "flows.yaml"
