"""The wheel, installed (not editable) in a fresh venv, runs a project from a directory of its own.

Build: `pip wheel --no-deps --no-build-isolation` on a copy of the working tree, with the
setuptools of the test venv (the test extra pins it): offline, about 1.5 s, and the repository
gets no build/ or egg-info. Install: a `venv --without-pip` and the test venv's pip
(`--python`), `--no-deps`; the dependencies come from the test venv's site-packages through a
.pth line, which puts that folder on sys.path without running its .pth files, so the editable
install of ecomflow there stays inert. A full `pip install -c requirements.lock` of the wheel
took 49 s and 273 MB here; this takes about 3 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import free_port, is_up, processes_using, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# Left out of the build's copy: what git ignores and what setuptools would write into the tree.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    ".ecomflow",
    "__pycache__",
    "*.pyc",
    "build",
    "dist",
    "*.egg-info",
    "test-artifacts",
    ".pytest_cache",
    "*.db",
    "*.sqlite",
)
DEPENDENCIES_PTH = "ecomflow-test-dependencies.pth"


@dataclass(frozen=True)
class Installed:
    """The built wheel and the fresh venv it is installed in."""

    wheel: Path
    venv: Path
    site_packages: Path

    def command(self, name: str) -> str:
        """Return the path of a console script of the venv."""
        return str(self.venv / "bin" / name)


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; fail the test with its output if it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False, **kwargs)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE, symlinks=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(work / "dist"),
            str(source),
        ]
    )
    [wheel] = (work / "dist").glob("ecomflow-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", str(wheel)])
    purelib = run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    site_packages = Path(purelib.stdout.strip())
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site_packages / DEPENDENCIES_PTH).write_text("".join(f"{path}\n" for path in ours), encoding="utf-8")
    return Installed(wheel=wheel, venv=venv, site_packages=site_packages)


def clean_env(**settings: str) -> dict[str, str]:
    """Return our environment without any ecomflow, Prefect or Python path setting, plus these."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ECOMFLOW_", "PREFECT_")) and key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    return {**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", **settings}


def repo_names(folder: str, pattern: str) -> set[str]:
    return {path.name for path in (REPO / folder).glob(pattern)}


class TestTheWheel:
    def test_it_holds_only_the_ecomflow_package_and_its_metadata(self, installed: Installed) -> None:
        with zipfile.ZipFile(installed.wheel) as wheel:
            tops = {name.split("/", 1)[0] for name in wheel.namelist()}
        assert tops == {"ecomflow", "ecomflow-0.1.0.dist-info"}

    def test_site_packages_gets_ecomflow_and_nothing_named_engine_api_or_flows(self, installed: Installed) -> None:
        entries = {path.name for path in installed.site_packages.iterdir()}
        assert entries == {"ecomflow", "ecomflow-0.1.0.dist-info", DEPENDENCIES_PTH}
        assert {"engine", "api", "flows", "migrations"} & entries == set()
        assert {path.name for path in (installed.site_packages / "ecomflow").iterdir() if path.is_dir()} >= {
            "engine",
            "api",
            "flows",
            "migrations",
        }

    def test_the_package_data_is_inside(self, installed: Installed) -> None:
        package = installed.site_packages / "ecomflow"
        assert (package / "flows.yaml").read_bytes() == (REPO / "src" / "ecomflow" / "flows.yaml").read_bytes()
        migrations = package / "migrations"
        assert {p.name for p in (migrations / "versions").glob("*.py")} == repo_names("migrations/versions", "*.py")
        assert (migrations / "script.py.mako").is_file() and (migrations / "env.py").is_file()
        web = package / "api" / "web"
        assert {p.name for p in (web / "templates").iterdir()} == repo_names("src/api/web/templates", "*")
        assert {p.name for p in (web / "static").iterdir()} == repo_names("src/api/web/static", "*")

    def test_ecomflow_is_imported_from_the_wheel_not_the_repository(self, installed: Installed, tmp_path: Path) -> None:
        # ecomflow is a regular package: its subpackages are found only under its own __path__.
        modules = ("ecomflow", "ecomflow.cli", "ecomflow.engine.config", "ecomflow.api", "ecomflow.migrations")
        code = (
            "import importlib, ecomflow; print(*ecomflow.__path__);"
            f"print('\\n'.join(importlib.import_module(m).__file__ for m in {modules!r}))"
        )
        files = run([installed.command("python"), "-c", code], cwd=tmp_path, env=clean_env()).stdout.split()
        assert len(files) == 1 + len(modules)
        assert all(Path(file).is_relative_to(installed.site_packages / "ecomflow") for file in files), files


class TestAProjectOfItsOwn:
    def test_init_check_migrate_and_up_from_another_directory(self, installed: Installed, tmp_path: Path) -> None:
        project = tmp_path / "shop"
        project.mkdir()
        data_dir = project / ".ecomflow"
        api_port, prefect_port = free_port(), free_port()
        env = clean_env(
            ECOMFLOW_DATA_DIR=str(data_dir), ECOMFLOW_API_PORT=str(api_port), ECOMFLOW_PREFECT_PORT=str(prefect_port)
        )
        ecomflow = installed.command("ecomflow")

        assert "ecomflow check" in run([ecomflow, "init"], cwd=project, env=env).stdout
        # The project's own flows.yaml (relative), not the packaged one, is what check reads.
        assert run([ecomflow, "check"], cwd=project, env=env).stdout.startswith("flows.yaml: ok")
        migrated = run([ecomflow, "migrate"], cwd=project, env=env).stdout.splitlines()
        assert migrated[0] == f"database at head: sqlite:///{data_dir / 'ecomflow.db'}"
        # Each process's definition is stored as its first version, which instances will pin.
        count = len(yaml.safe_load((project / "flows.yaml").read_text(encoding="utf-8"))["processes"])
        assert migrated[-1] == f"definition versions: {count} new, {count} processes current"
        assert len([line for line in migrated if line.startswith("stored ")]) == count
        token = run([ecomflow, "users", "add", "packager", "--role", "operations"], cwd=project, env=env).stdout.strip()

        up = subprocess.Popen(
            [ecomflow, "up"], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        api = f"http://127.0.0.1:{api_port}"
        try:
            wait_until(lambda: is_up(api), timeout=180, what="the API of the installed ecomflow up")
            processes = httpx.get(f"{api}/processes", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            login = httpx.get(f"{api}/ui/login", timeout=10)
            stylesheet = httpx.get(f"{api}/ui/static/app.css", timeout=10)
            up.send_signal(signal.SIGINT)
            output, _ = up.communicate(timeout=60)
        finally:
            if up.poll() is None:
                up.kill()
        assert up.returncode == 0 and "stopped." in output, output
        shipped = yaml.safe_load((project / "flows.yaml").read_text(encoding="utf-8"))["processes"]
        assert processes.status_code == 200 and {p["key"] for p in processes.json()} == set(shipped)
        assert login.status_code == 200 and login.headers["content-type"].startswith("text/html")
        assert stylesheet.content == (REPO / "src" / "api" / "web" / "static" / "app.css").read_bytes()
        assert processes_using(str(data_dir)) == []
