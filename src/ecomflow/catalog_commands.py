"""`ecomflow catalog …`: import and export the master data (products, variants, stock per location)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecomflow.command_helpers import ProgressBar, principal_or_exit
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import EcomflowError
from ecomflow.engine.shop.catalog_import import check_file, export_rows, import_rows, write_report, write_table

catalog_app = typer.Typer(help="Import and export the catalogue (products, variants, stock).", no_args_is_help=True)


@catalog_app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8, UTF-8 with BOM or GBK) or XLSX, one row per variant")],
    as_user: Annotated[str, typer.Option("--as", help="who imports: a user of the product role or a manager")],
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="import the good rows and write a report of the bad ones")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="where --skip-bad writes the bad rows (default: FILE.bad-rows.csv)")
    ] = None,
) -> None:
    """Check the whole file, then import it; by default nothing is written when any row is bad."""
    if not file.is_file():
        typer.echo(f"error: {file} is not a file", err=True)
        raise typer.Exit(2)
    try:
        with session_scope() as session:
            principal = principal_or_exit(session, as_user)
            checked = check_file(file, session=session)
            for line, reason in checked.bad:
                typer.echo(f"{file}:{line}: {reason}", err=True)
            if checked.bad and not skip_bad:
                typer.echo(
                    f"error: {len(checked.bad)} bad row(s); nothing imported (fix them, or pass --skip-bad)", err=True
                )
                raise typer.Exit(1)
            if checked.bad:
                report = report or file.with_name(f"{file.name}.bad-rows.csv")
                write_report(report, checked.bad)
                typer.echo(f"{len(checked.bad)} bad row(s) left out; report: {report}")
            with ProgressBar(len(checked.rows)) as advance:
                imported = import_rows(session, checked, principal=principal, source=file.name, progress=advance)
    except EcomflowError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"imported {imported.variants} variant(s) of {imported.products} product(s); "
        f"{imported.movements} stock movement(s)"
    )


@catalog_app.command("export")
def catalog_export(
    file: Annotated[Path, typer.Argument(help="where to write: .csv (UTF-8 with BOM) or .xlsx")],
) -> None:
    """Write the whole catalogue in the import's columns, stock per location."""
    with session_scope() as session:
        header, rows = export_rows(session)
        count = write_table(file, header, rows)
    typer.echo(f"wrote {count} variant(s) to {file}")
