"""pyproject's package list: every source folder ships, under ecomflow.*, with its data files.

The packages are listed by hand (setuptools package-dir maps src/engine to ecomflow.engine and so
on), so a new folder would silently be left out of the wheel; these tests name it instead.
tests/test_wheel.py builds and installs the wheel itself.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.db_independent

REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = (REPO / "src", REPO / "migrations")
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def folder_of(package: str) -> Path:
    """Return the folder a listed package is built from, through the longest package-dir prefix."""
    mapped = max(
        (name for name in SETUPTOOLS["package-dir"] if package == name or package.startswith(f"{name}.")), key=len
    )
    rest = package.removeprefix(mapped).lstrip(".")
    return (REPO / SETUPTOOLS["package-dir"][mapped]).joinpath(*filter(None, rest.split(".")))


def source_folders() -> set[Path]:
    """Return every folder under src/ and migrations/ that holds a .py file."""
    return {path.parent for root in SOURCE_ROOTS for path in root.rglob("*.py") if "__pycache__" not in path.parts}


def package_of(path: Path) -> str:
    """Return the listed package whose folder is nearest above the file."""
    by_folder = {folder_of(package): package for package in SETUPTOOLS["packages"]}
    return next(by_folder[folder] for folder in path.parents if folder in by_folder)


def data_files() -> list[Path]:
    """Return every file in the source folders that is not Python (templates, static files, flows.yaml, ...)."""
    return sorted(
        path
        for root in SOURCE_ROOTS
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix not in (".py", ".pyc")
        and not any(part == "__pycache__" or part.endswith(".egg-info") for part in path.parts)
    )


class TestPackageList:
    def test_every_folder_with_python_files_is_a_listed_package(self) -> None:
        listed = {folder_of(package) for package in SETUPTOOLS["packages"]}
        missing = sorted(str(folder.relative_to(REPO)) for folder in source_folders() - listed)
        assert missing == [], f"add these folders' packages to [tool.setuptools] packages in pyproject.toml: {missing}"

    def test_every_listed_package_is_a_folder_with_python_files(self) -> None:
        stale = sorted(p for p in SETUPTOOLS["packages"] if folder_of(p) not in source_folders())
        assert stale == []

    def test_everything_installs_under_ecomflow(self) -> None:
        assert all(p == "ecomflow" or p.startswith("ecomflow.") for p in SETUPTOOLS["packages"])
        assert all(p == "ecomflow" or p.startswith("ecomflow.") for p in SETUPTOOLS["package-dir"])

    def test_the_folders_are_the_ones_the_design_names(self) -> None:
        assert folder_of("ecomflow.engine.tasks") == REPO / "src" / "engine" / "tasks"
        assert folder_of("ecomflow.migrations.versions") == REPO / "migrations" / "versions"
        assert folder_of("ecomflow") == REPO / "src" / "ecomflow"


class TestPackageData:
    def test_the_data_files_exist(self) -> None:
        assert {"flows.yaml", "script.py.mako", "base.html", "app.css"} <= {path.name for path in data_files()}

    @pytest.mark.parametrize("path", data_files(), ids=lambda path: str(path.relative_to(REPO)))
    def test_every_data_file_is_matched_by_its_packages_globs(self, path: Path) -> None:
        package = package_of(path)
        globs = SETUPTOOLS.get("package-data", {}).get(package, [])
        matched = {match for pattern in globs for match in folder_of(package).glob(pattern)}
        assert path in matched, f"add a glob for {path.relative_to(folder_of(package))} to package-data of {package}"
