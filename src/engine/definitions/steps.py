"""Read and check the steps of one flows.yaml process, including the forms they carry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ecomflow.engine.definitions.durations import DURATION, parse_duration
from ecomflow.engine.definitions.forms import NAME_PATTERN, FormSpec, compile_form, parse_label
from ecomflow.engine.definitions.sla_policy import CLOCKS, PRIORITIES, read_escalation
from ecomflow.engine.errors import FormDefinitionError

__all__ = ["HUMAN_KINDS", "STEP_KINDS", "read_form", "read_steps"]

# The built-in step of every process (processes.REWORK_CEILING): no flows.yaml step may take its key.
RESERVED_STEP_KEY = "rework_ceiling"
STEP_KINDS = ("human", "approval", "auto", "timer", "parallel", "child")
HUMAN_KINDS = frozenset({"human", "approval", "parallel"})
_STEP_COMMON_KEYS = frozenset({"key", "kind", "title", "when"})
_STEP_KIND_KEYS = {
    "human": frozenset({"role", "due", "expires", "form", "reminder", "priority", "clock", "escalate", "max_rounds"}),
    "approval": frozenset(
        {
            "role",
            "due",
            "expires",
            "form",
            "reject_to",
            "approves",
            "reminder",
            "priority",
            "clock",
            "escalate",
            "max_rounds",
        }
    ),
    "parallel": frozenset(
        {"roles", "due", "expires", "form", "reminder", "priority", "clock", "escalate", "max_rounds"}
    ),
    "auto": frozenset(),
    "timer": frozenset({"at"}),
    "child": frozenset({"process", "each"}),
}


def read_form(raw: Any, where: str, *, approval: bool, problems: list[str]) -> FormSpec | None:
    """Compile a form; on failure append its problems and return None."""
    try:
        return compile_form(raw, where=where, approval=approval)
    except FormDefinitionError as exc:
        problems.extend(exc.problems)
        return None


def read_steps(
    process: str,
    raw: Any,
    start_form: FormSpec | None,
    *,
    roles: Mapping[str, Any],
    known: frozenset[str],
    problems: list[str],
) -> list[dict[str, Any]]:
    """Return the StepSpec keyword arguments of each readable step, appending every problem found."""
    where = f"processes.{process}.steps"
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: expected a non-empty list of steps")
        return []
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
    return [step for step, _ in parsed]


def _read_step(
    index: int, raw: Any, steps_where: str, *, roles: Mapping[str, Any], known: frozenset[str], problems: list[str]
) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{steps_where}[{index}]: expected a mapping with key, kind and title")
        return None
    key = raw.get("key")
    if not isinstance(key, str) or not NAME_PATTERN.match(key):
        problems.append(f"{steps_where}[{index}].key: expected a lower_snake_case step key, got {key!r}")
        return None
    if key == RESERVED_STEP_KEY:
        problems.append(f"{steps_where}[{index}].key: {key!r} is the built-in rework-ceiling step; choose another key")
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
        elif not isinstance(role, str):
            problems.append(f"{where}.role: expected a role key (a string), got {role!r}")
        elif role not in roles:
            problems.append(f"{where}.role: unknown role {role!r} (declared: {', '.join(roles)})")
        step["role"] = role
    if kind == "parallel":
        step["roles"] = _read_step_roles(raw.get("roles"), f"{where}.roles", roles, problems)
    for name in ("due", "expires"):
        if raw.get(name) is not None:
            step[name] = _read_duration(raw[name], f"{where}.{name}", problems)
    if kind in HUMAN_KINDS:
        step["form"] = read_form(raw.get("form"), f"{where}.form", approval=kind == "approval", problems=problems)
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
        elif isinstance(child, str) and child not in known:  # a non-string was reported above
            problems.append(f"{where}.process: unknown process {child!r} (defined: {', '.join(sorted(known))})")
    if kind in HUMAN_KINDS:
        _read_sla_keys(raw, where, step, roles, problems)
        if "max_rounds" in raw:
            rounds = raw["max_rounds"]
            if isinstance(rounds, int) and not isinstance(rounds, bool) and rounds >= 1:
                step["max_rounds"] = rounds
            else:
                problems.append(f"{where}.max_rounds: expected a positive integer (rounds before the managers decide)")
    reminder = raw.get("reminder")
    if isinstance(reminder, str) and reminder != "daily" and not DURATION.match(reminder):
        problems.append(f"{where}.reminder: expected 'daily' or a duration such as 4h, got {reminder!r}")
    return step


def _read_sla_keys(
    raw: Mapping[str, Any], where: str, step: dict[str, Any], roles: Mapping[str, Any], problems: list[str]
) -> None:
    priority = raw.get("priority", "normal")
    if not isinstance(priority, str) or priority not in PRIORITIES:
        problems.append(f"{where}.priority: expected one of {', '.join(PRIORITIES)}, got {priority!r}")
        priority = "normal"
    step["priority"] = PRIORITIES[priority]
    clock = raw.get("clock", "business")
    if not isinstance(clock, str) or clock not in CLOCKS:
        problems.append(f"{where}.clock: expected one of {', '.join(CLOCKS)}, got {clock!r}")
        clock = "business"
    step["clock"] = clock
    if "escalate" in raw:
        step["escalate"] = read_escalation(raw["escalate"], f"{where}.escalate", roles, problems)


def _read_step_roles(raw: Any, where: str, roles: Mapping[str, Any], problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: a parallel step needs a non-empty list of roles")
        return ()
    for role in raw:
        if not isinstance(role, str):
            problems.append(f"{where}: expected role keys (strings), got {role!r}")
        elif role not in roles:
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


def _check_step_ref(
    target: Any,
    ref: str,
    where: str,
    process: str,
    keys: list[str],
    earlier: Mapping[str, Mapping[str, Any]],
    problems: list[str],
) -> None:
    if not isinstance(target, str):
        return
    if target not in keys:
        problems.append(f"{where}.{ref}: process {process!r} has no step {target!r} (steps: {', '.join(keys)})")
    elif target not in earlier:
        problems.append(f"{where}.{ref}: step {target!r} does not come before this step")
    elif earlier[target]["kind"] not in HUMAN_KINDS:
        problems.append(
            f"{where}.{ref}: step {target!r} is of kind {earlier[target]['kind']}; "
            f"{ref} must name a step a person does (human, approval or parallel)"
        )


def _check_field_ref(
    name: Any, ref: str, where: str, fields: Mapping[str, Any], types: tuple[str, ...], problems: list[str]
) -> None:
    # Free-text descriptions are allowed; a bare identifier must name a real field.
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return
    field = fields.get(name)
    if field is None:
        problems.append(f"{where}.{ref}: {name!r} is not a field of the start form or of an earlier step's form")
    elif field.type not in types:
        problems.append(f"{where}.{ref}: field {name!r} is a {field.type}; expected {' or '.join(types)}")
