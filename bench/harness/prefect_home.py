"""Give a new Prefect home an already migrated SQLite database, when a template is named (the test suite names one).

Prefect migrates a new database on its first start: 10.2 s to healthy on 2 cores, 3.4 s once
migrated. The test suite starts about five fresh Prefect servers per database; it migrates one
template (9 s) and copies it. Benchmarks run from the command line name no template, so their
stack start-up figures still include Prefect's migrations.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

TEMPLATE_ENV = "ECOMFLOW_PREFECT_DB_TEMPLATE"
_DATABASE_URL_SETTINGS = ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")
_building = threading.Lock()


def seed_prefect_home(prefect_home: Path, env: Mapping[str, str]) -> None:
    """Copy the migrated template into prefect_home.

    Not when none is named, Prefect is not on SQLite there, or a database is already there.
    """
    template = os.environ.get(TEMPLATE_ENV)
    if not template or any(name in env for name in _DATABASE_URL_SETTINGS):
        return
    target = prefect_home / "prefect.db"
    if target.exists():
        return
    with _building:
        if not Path(template).exists():
            _migrate_template(Path(template))
    prefect_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)


def _migrate_template(template: Path) -> None:
    """Run Prefect's migrations on a database of its own, then move the finished file into place."""
    template.parent.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="prefect-template-", dir=template.parent))
    env = {key: value for key, value in os.environ.items() if key not in _DATABASE_URL_SETTINGS}
    env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"})
    subprocess.run(
        [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    built = home / "prefect.db"
    # One self-contained file: fold the write-ahead log in before copying it.
    with closing(sqlite3.connect(built)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.replace(built, template)
    shutil.rmtree(home, ignore_errors=True)
