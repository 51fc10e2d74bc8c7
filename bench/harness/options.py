"""The command-line options every benchmark takes, and the setting they name in RESULTS.md."""

from __future__ import annotations

import argparse

from bench.harness.databases import DB_CHOICES


def add_common_options(parser: argparse.ArgumentParser, *, prefect_db: bool = True, env: bool = True) -> None:
    """Add --db, --prefect-db, --env, --keep and --record (with --no-record, now the default, still accepted)."""
    parser.add_argument("--db", choices=DB_CHOICES, default="sqlite", help="ecomflow's database")
    if prefect_db:
        parser.add_argument("--prefect-db", choices=DB_CHOICES, default="sqlite", help="the Prefect server's database")
    if env:
        parser.add_argument(
            "--env",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="extra ECOMFLOW_* setting for the API and worker",
        )
    parser.add_argument("--keep", action="store_true", help="keep the data dir (logs, SQLite files)")
    recording = parser.add_mutually_exclusive_group()
    recording.add_argument(
        "--record",
        action="store_true",
        help="replace this benchmark's entry for this setting in bench/RESULTS.md with this run's figure",
    )
    recording.add_argument(
        "--no-record",
        dest="record",
        action="store_false",
        help="print only, the default (kept so that older commands still run)",
    )


def env_overrides(args: argparse.Namespace) -> dict[str, str]:
    """Return the --env KEY=VALUE pairs as a dict."""
    return dict(item.split("=", 1) for item in getattr(args, "env", []))


def setting_of(args: argparse.Namespace, *, extra: str = "") -> str:
    """Name the setting a run's command line asks for (see setting_label)."""
    return setting_label(args.db, prefect_db=getattr(args, "prefect_db", None), env=env_overrides(args), extra=extra)


def setting_label(
    db: str, *, prefect_db: str | None = "sqlite", env: dict[str, str] | None = None, extra: str = ""
) -> str:
    """Name the setting a figure belongs to: the databases, env overrides and any mode ('vs bare Prefect')."""
    parts = [db]
    if prefect_db == "postgresql":
        parts.append("Prefect on postgresql")
    parts += [f"env {key}={value}" for key, value in sorted((env or {}).items())]
    if extra:
        parts.append(extra)
    return ", ".join(parts)
