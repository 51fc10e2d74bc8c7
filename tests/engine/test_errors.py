"""The error tree: the drawing in engine/errors.py is the hierarchy, and every error says what it means."""

from __future__ import annotations

import inspect
import re

import pytest

from ecomflow.engine import errors
from ecomflow.engine.errors import (
    DefinitionError,
    DefinitionMissing,
    EcomflowError,
    FormDefinitionError,
    NotFound,
    UnknownProcess,
    UnknownStep,
)

pytestmark = pytest.mark.db_independent

# "│   ├── IllegalTransition   the task ..." → indent "│   ├── ", name "IllegalTransition"
_TREE_LINE = re.compile(r"^(?P<indent>[│├└─\s]*)(?P<name>[A-Z]\w+)\b")


def drawn_parents() -> dict[str, str]:
    """Return each error's parent as the module docstring draws it."""
    lines = errors.__doc__.split("\n\n")[1].splitlines()
    assert lines[0] == "EcomflowError", lines[0]
    parents: dict[str, str] = {}
    path = ["EcomflowError"]
    for line in lines[1:]:
        match = _TREE_LINE.match(line)
        assert match, line
        depth = len(match["indent"]) // 4
        path[depth:] = [match["name"]]
        parents[match["name"]] = path[depth - 1]
    return parents


def declared_errors() -> list[type[EcomflowError]]:
    """Return every error class errors.py declares, the base included."""
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, EcomflowError) and cls.__module__ == errors.__name__
    ]


class TestTheTree:
    def test_the_drawing_names_each_error_under_its_base_class(self) -> None:
        actual = {cls.__name__: cls.__base__.__name__ for cls in declared_errors() if cls is not EcomflowError}
        assert drawn_parents() == actual

    @pytest.mark.parametrize("cls", declared_errors(), ids=lambda cls: cls.__name__)
    def test_every_error_has_a_one_line_docstring(self, cls: type[EcomflowError]) -> None:
        assert cls.__doc__ and "\n" not in cls.__doc__.strip(), cls

    def test_the_lookups_are_not_found_and_no_longer_key_errors(self) -> None:
        for cls in (UnknownProcess, UnknownStep):
            assert issubclass(cls, DefinitionMissing) and issubclass(cls, NotFound)
            assert not issubclass(cls, KeyError)

    def test_an_invalid_flows_yaml_is_not_a_not_found(self) -> None:
        assert issubclass(FormDefinitionError, DefinitionError) and issubclass(DefinitionError, EcomflowError)
        assert not issubclass(DefinitionError, NotFound)

    def test_a_definition_error_carries_every_problem(self) -> None:
        error = DefinitionError(["a: wrong", "b: missing"])
        assert error.problems == ["a: wrong", "b: missing"]
        assert str(error) == error.detail == "a: wrong\nb: missing"
