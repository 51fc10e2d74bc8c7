"""Definitions fuzzing: malformed-but-parseable flows.yaml never crashes the loader.

The shipped flows.yaml is mutated at random (deterministically) and handed to parse_definitions, which must
either return Definitions or raise DefinitionError with located problems — never TypeError, KeyError & co.
"""

from __future__ import annotations

import copy
import random
import traceback
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from ecomflow.engine.definitions.processes import Definitions, load_definitions, parse_definitions
from ecomflow.engine.errors import DefinitionError

pytestmark = pytest.mark.db_independent

FLOWS_YAML = Path(__file__).resolve().parents[3] / "flows.yaml"
SEED = 1234
MUTATIONS = 2000  # spread over documents carrying 1-3 mutations each: the loader reports every problem at once
# What safe_load can give where something else was expected (dates and floats included).
REPLACEMENTS: tuple[Any, ...] = (
    None,
    0,
    "x",
    [],
    {},
    [1],
    {"a": 1},
    True,
    -1,
    1.5,
    "",
    date(2025, 5, 1),
    ["x"],
    [None],
    [{}],
    {"zh": 1},
    {"type": "string"},
)
BAD_KEYS: tuple[Any, ...] = (1, None, True, 1.5, "", "Bad Key", date(2025, 5, 1))

Path_ = tuple[Any, ...]


@pytest.fixture(scope="module")
def shipped_raw() -> dict[str, Any]:
    with FLOWS_YAML.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(autouse=True)
def cached_check_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check each distinct compiled form schema once: the metaschema check dominates the run time."""
    check = Draft202012Validator.check_schema
    checked: set[str] = set()

    def check_once(schema: Any) -> None:
        key = repr(schema)  # compiled schemas hold only plain values, so equal reprs mean equal schemas
        if key not in checked:
            check(schema)
            checked.add(key)

    monkeypatch.setattr(Draft202012Validator, "check_schema", staticmethod(check_once))


def _paths(node: Any, path: Path_ = ()) -> list[Path_]:
    """Every node's path below the root (keys and list indexes), parents before children."""
    found: list[Path_] = []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for step, child in children:
        found.append((*path, step))
        found.extend(_paths(child, (*path, step)))
    return found


def _copy_along(root: Any, path: Path_) -> tuple[Any, Any] | None:
    """Shallow-copy the containers from the root down to path's parent; return (new root, parent) or None."""
    new_root = copy.copy(root)
    parent = new_root
    for step in path[:-1]:
        try:
            child = copy.copy(parent[step])
        except (KeyError, IndexError, TypeError):
            return None
        if not isinstance(child, (dict, list)):
            return None
        parent[step] = child
        parent = child
    if not isinstance(parent, (dict, list)):
        return None
    try:
        parent[path[-1]]
    except (KeyError, IndexError, TypeError):
        return None
    return new_root, parent


def _mutate(root: Any, path: Path_, rng: random.Random, all_paths: list[Path_]) -> tuple[Any, str] | None:
    """Apply one random mutation at path, sharing everything off the path with root; None when it no longer fits."""
    copied = _copy_along(root, path)
    if copied is None:
        return None
    new_root, parent = copied
    last = path[-1]
    where = ".".join(map(str, path))
    operation = rng.choice(("replace", "replace", "replace", "delete", "rename", "stringify", "transplant"))
    if operation == "delete":
        del parent[last]
        return new_root, f"delete {where}"
    if operation == "rename" and isinstance(parent, dict):
        bad = rng.choice(BAD_KEYS)
        if bad in parent:
            return None
        parent[bad] = parent.pop(last)
        return new_root, f"rename key {where} to {bad!r}"
    if operation == "stringify" and isinstance(parent, list):
        parent.insert(rng.randrange(len(parent) + 1), str(parent[last]))
        return new_root, f"duplicate {where} as a string"
    if operation == "transplant":
        donor = rng.choice(all_paths)
        value: Any = root
        for step in donor:
            if not isinstance(value, (dict, list)) or (isinstance(value, list) and not isinstance(step, int)):
                return None
            try:
                value = value[step]
            except (KeyError, IndexError):
                return None
        parent[last] = value  # shared, not copied: the loader must not change its input
        return new_root, f"replace {where} with the value of {'.'.join(map(str, donor))}"
    value = copy.deepcopy(rng.choice(REPLACEMENTS))
    parent[last] = value
    return new_root, f"replace {where} with {value!r}"


def _mutants(raw: dict[str, Any]) -> list[tuple[Any, list[str]]]:
    """Return (document, mutations applied) pairs, MUTATIONS mutations in all, from a seeded generator."""
    rng = random.Random(SEED)
    all_paths = _paths(raw)
    mutants: list[tuple[Any, list[str]]] = []
    total = 0
    while total < MUTATIONS:
        document: Any = raw
        applied: list[str] = []
        wanted = min(rng.randint(1, 3), MUTATIONS - total)
        while len(applied) < wanted:
            result = _mutate(document, rng.choice(all_paths), rng, all_paths)
            if result is not None:
                document, description = result
                applied.append(description)
        total += len(applied)
        mutants.append((document, applied))
    # A few whole-document shapes too.
    mutants.extend(([value], [f"document is [{value!r}]"]) for value in REPLACEMENTS[:4])
    mutants.extend((value, [f"document is {value!r}"]) for value in REPLACEMENTS)
    return mutants


def _crash_site(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    frame = next((f for f in reversed(frames) if "/engine/" in f.filename), frames[-1])  # the loader's line
    return f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno} ({frame.line})"


def _definitions_or_refusal(document: Any) -> Definitions | DefinitionError:
    """Return what parse_definitions makes of `document`, or its refusal; any other exception escapes."""
    try:
        return parse_definitions(document)
    except DefinitionError as exc:
        return exc


def test_mutated_flows_yaml_gives_definitions_or_definition_error(shipped_raw):
    pristine = copy.deepcopy(shipped_raw)
    crashes: dict[str, tuple[list[str], str]] = {}
    outcomes = {"ok": 0, "refused": 0}
    for document, applied in _mutants(shipped_raw):
        try:
            result = _definitions_or_refusal(document)
        except Exception as exc:
            crashes.setdefault(_crash_site(exc), (applied, f"{type(exc).__name__}: {exc}"))
            continue
        if isinstance(result, DefinitionError):
            outcomes["refused"] += 1
            problems = result.problems
            assert problems and all(isinstance(p, str) and ": " in p for p in problems), (applied, problems)
        else:
            outcomes["ok"] += 1
            assert isinstance(result, Definitions)
    report = "\n".join(
        f"{site}\n    after {'; '.join(applied)}\n    {message}" for site, (applied, message) in crashes.items()
    )
    assert not crashes, f"{len(crashes)} crash sites:\n{report}"
    assert outcomes["refused"] > outcomes["ok"] > 0, outcomes  # the mutations bite, and harmless ones still load
    assert shipped_raw == pristine, "parse_definitions changed its input"


# Values no random mutation is likely to hit, each of which once escaped as another exception.
QMP = ("processes", "quarterly_marketing_plan")
QMP_WHERE = "processes.quarterly_marketing_plan"
NASTY = [
    (("calendar", "timezone"), "America", "calendar.timezone: unknown time zone 'America'"),  # a tzdata directory
    (("calendar", "timezone"), "x" * 300, "calendar.timezone: unknown time zone"),  # file name too long
    ((*QMP, "schedule", "timezone"), "Europe", f"{QMP_WHERE}.schedule.timezone: unknown time zone"),
    ((*QMP, "schedule", "cron"), f"0 9 1 {'1' * 5000} *", f"{QMP_WHERE}.schedule.cron: cron"),
    ((*QMP, "schedule", "cron"), f"*/{'1' * 5000} 9 1 * *", f"{QMP_WHERE}.schedule.cron: cron"),
    (
        (*QMP, "start_form", "fields", "quarter", "pattern"),
        "a{99999999999}",
        f"{QMP_WHERE}.start_form.fields.quarter.pattern: not a valid regular expression",
    ),
    ((*QMP, "steps", 1, "due"), "99999999999d", f"{QMP_WHERE}.steps.draft_plan.due: invalid duration"),
    ((*QMP, "steps", 1, "due"), "9" * 5000 + "m", f"{QMP_WHERE}.steps.draft_plan.due: invalid duration"),
    ((*QMP, "steps", 1, "role"), ["operations"], f"{QMP_WHERE}.steps.draft_plan.role: expected a role key"),
    ((*QMP, "steps", 4, "roles"), [["product"]], f"{QMP_WHERE}.steps.department_strategies.roles: expected role keys"),
    ((*QMP, "steps", 6, "process"), {"a": 1}, f"{QMP_WHERE}.steps.campaign_plans.process: expected a non-empty string"),
]


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def _deep_form_field(levels: int) -> dict[str, Any]:
    field: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        field = {"type": "list", "items": field}
    return {**field, "label": {"zh": "深", "en": "Deep"}}


def _set(raw: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    mutated = copy.deepcopy(raw)
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return mutated


@pytest.mark.parametrize(
    ("path", "value", "expected"), NASTY, ids=[f"{'.'.join(map(str, p))}={v!r:.20}" for p, v, _ in NASTY]
)
def test_nasty_values_are_located_problems(shipped_raw, path, value, expected):
    with pytest.raises(DefinitionError) as caught:
        parse_definitions(_set(shipped_raw, path, value))
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_a_list_or_mapping_that_contains_itself_is_refused(shipped_raw):
    loop: list[Any] = ["x"]
    loop.append(loop)
    with pytest.raises(DefinitionError) as caught:
        parse_definitions(_set(shipped_raw, ("rules", "loop"), loop))
    assert caught.value.problems == [
        "rules.loop[1]: refers to a mapping or list that contains it (a recursive YAML alias)"
    ]


def test_a_recursive_yaml_alias_is_refused(tmp_path):
    path = tmp_path / "flows.yaml"
    text = FLOWS_YAML.read_text(encoding="utf-8")
    assert text.count("\nrules:\n") == 1
    path.write_text(text.replace("\nrules:\n", "\nrules:\n  loop: &loop {again: [*loop]}\n"), encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_definitions(path)
    assert caught.value.problems == [
        "rules.loop.again[0]: refers to a mapping or list that contains it (a recursive YAML alias)"
    ]


def test_shared_aliases_are_fine(shipped_raw):
    shared = {"zh": "共", "en": "Shared"}
    mutated = _set(shipped_raw, (*QMP, "title"), shared)
    mutated["processes"]["daily_report"]["title"] = shared
    assert parse_definitions(mutated).process("daily_report").label.en == "Shared"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("rules", "deep"), _deep(200), "rules.deep[0][0]"),
        (
            (*QMP, "start_form", "fields", "quarter"),
            _deep_form_field(200),
            f"{QMP_WHERE}.start_form.fields.quarter.items",
        ),
    ],
)
def test_absurdly_deep_nesting_is_refused(shipped_raw, path, value, expected):
    with pytest.raises(DefinitionError) as caught:
        parse_definitions(_set(shipped_raw, path, value))
    [problem] = caught.value.problems
    assert problem.startswith(expected) and problem.endswith(": nested more than 64 levels deep"), problem


def test_yaml_too_deep_for_the_parser_is_a_definition_error(tmp_path):
    path = tmp_path / "flows.yaml"
    path.write_text("version: " + "[" * 2000 + "]" * 2000 + "\n", encoding="utf-8")
    with pytest.raises(DefinitionError, match="nested too deeply"):
        load_definitions(path)
