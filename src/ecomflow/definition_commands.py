"""The commands about definition versions: store them, report what running instances would meet, migrate them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecomflow.engine.definitions.processes import Definitions

instances_app = typer.Typer(help="Manage running process instances.", no_args_is_help=True)


def store_definition_versions(definitions: Definitions | None = None) -> None:
    """Store the loaded flows.yaml's process texts as definition versions; say which are new."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.definitions.current import get_definitions
    from ecomflow.engine.definitions.versions import store_versions
    from ecomflow.engine.errors import DefinitionError

    try:
        definitions = definitions or get_definitions()
    except DefinitionError as exc:
        typer.echo(
            f"error: flows.yaml is invalid, so no definition version was stored ({len(exc.problems)} problem(s))",
            err=True,
        )
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None
    with session_scope() as session:
        stored = store_versions(session, definitions)
    for version in stored:
        if version.new:
            typer.echo(
                f"stored {version.process_key} definition version {version.version} "
                f"(flows.yaml version: {version.declared_version}, sha256 {version.sha256[:12]})"
            )
    typer.echo(f"definition versions: {sum(v.new for v in stored)} new, {len(stored)} processes current")


def check_flow_code(definitions: Definitions) -> list[str]:
    """Return a sentence per process whose flows.yaml `version:` no loaded flow module was written for."""
    from ecomflow.flows import runnable_versions

    runnable = runnable_versions(definitions.processes)
    return [
        f"processes.{key}.version: {spec.version}, but ecomflow.flows.{key} was written for version: "
        f"{', '.join(map(str, sorted(runnable[key])))}; new instances would fail (update the flow's written_for)"
        for key, spec in definitions.processes.items()
        if key in runnable and spec.version not in runnable[key]
    ]


def report_running_instances(definitions: Definitions) -> int:
    """Print what running instances would meet on the checked file; return the number of findings."""
    from sqlalchemy.exc import SQLAlchemyError

    from ecomflow.engine.db.sessions import read_scope
    from ecomflow.engine.definitions.compatibility import report_running_instances as report
    from ecomflow.flows import runnable_versions

    if not _database_exists():
        typer.echo("running instances: none (no database yet; `ecomflow migrate` creates it)")
        return 0
    runnable = runnable_versions(definitions.processes)
    try:
        with read_scope() as session:
            reports = report(session, definitions, runnable=runnable)
    except SQLAlchemyError as exc:
        typer.echo(f"running instances: not checked (the database cannot be read: {type(exc).__name__})")
        return 0
    if not reports:
        typer.echo("running instances: all on the current definition of their process")
        return 0
    findings = 0
    for process in reports:
        target = process.current_version if process.current_version is not None else "new (stored at migrate)"
        typer.echo(
            f"{process.process_key}: {process.running} running instance(s) on version {process.from_version}; "
            f"the file's text is version {target}. They keep version {process.from_version} until they end; moved, "
            f"they would meet:"
        )
        for finding in process.findings:
            findings += 1
            ids = f" — {', '.join(finding.instance_ids)}{' …' if finding.count > len(finding.instance_ids) else ''}"
            typer.echo(f"  [{finding.kind}] {finding.message} ({finding.count}){ids if finding.instance_ids else ''}")
        if not process.findings:
            typer.echo("  nothing they wait on or have still to do changes")
    return findings


def _database_exists() -> bool:
    """Tell whether the configured database can hold instances: a SQLite file is not made just to be read."""
    from sqlalchemy.engine import make_url

    from ecomflow.engine.config import get_settings

    url = make_url(get_settings().resolved_database_url)
    return url.get_backend_name() != "sqlite" or not url.database or Path(url.database).exists()


@instances_app.command("migrate")
def migrate_instances(
    process: Annotated[str, typer.Option("--process", help="the process key")],
    to_version: Annotated[int, typer.Option("--to-version", help="the stored definition version to move to")],
    step_map: Annotated[
        list[str] | None, typer.Option("--map", help="old_step=new_step for a step the target renamed or dropped")
    ] = None,
) -> None:
    """Move every running instance of a process to a stored definition version; refused if a waited step has no map."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.errors import DefinitionMissing, MigrationRefused
    from ecomflow.engine.instances.migration import migrate_instances as migrate
    from ecomflow.engine.instances.migration import parse_step_map
    from ecomflow.flows import runnable_versions

    try:
        mapping = parse_step_map(step_map or [])
        written_for = runnable_versions([process]).get(process, frozenset())
        with session_scope() as session:
            result = migrate(
                session,
                process_key=process,
                to_version=to_version,
                step_map=mapping,
                actor="cli",
                written_for=written_for,
            )
    except MigrationRefused as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None
    except DefinitionMissing as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"moved {len(result.moved)} {process} instance(s) to definition version {to_version}")
    for instance_id in result.moved:
        typer.echo(f"  {instance_id}")
