"""`ecomflow import orders|refunds|reviews|traffic|ads FILE --platform tmall|jd`, and `ecomflow sample-export`."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ecomflow.command_helpers import ProgressBar, principal_or_exit
from ecomflow.engine.access import check_may_import_platform_data
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import EcomflowError, ValidationFailed
from ecomflow.engine.intake import importer
from ecomflow.engine.intake.mapping import load_mapping
from ecomflow.sample_exports import FORMATS, write_export

import_app = typer.Typer(
    help="Import the shops' exports (orders, refunds, reviews; traffic and ads) from Tmall/Taobao and JD.",
    no_args_is_help=True,
)


class PlatformName(StrEnum):
    tmall = "tmall"
    jd = "jd"


class KindName(StrEnum):
    orders = "orders"
    refunds = "refunds"
    reviews = "reviews"
    traffic = "traffic"
    traffic_items = "traffic_items"
    ads = "ads"


class AdSourceName(StrEnum):
    ztc = "ztc"
    zz = "zz"


AdSourceOption = Annotated[AdSourceName, typer.Option("--source", help="ztc: 直通车; zz: 钻展 (the file does not say)")]


FileArgument = Annotated[Path, typer.Argument(help="the export: CSV (GBK/GB18030, UTF-8 with BOM) or XLSX")]
PlatformOption = Annotated[PlatformName, typer.Option("--platform", help="whose export it is")]
AsOption = Annotated[str, typer.Option("--as", help="who imports: a customer service user or a manager")]
MappingOption = Annotated[
    Path | None, typer.Option("--mapping", help="a mapping YAML to use instead of the team's or the shipped one")
]


@import_app.command("orders")
def import_orders(
    file: FileArgument,
    platform: PlatformOption,
    as_user: AsOption,
    lines: Annotated[
        Path | None, typer.Option("--lines", help="Tmall: the 宝贝报表 (order lines) exported with the 订单报表")
    ] = None,
    mapping: MappingOption = None,
) -> None:
    """Import an order export (Tmall: 订单报表 with --lines 宝贝报表; JD: 订单导出, one row per line)."""
    if platform is PlatformName.tmall and lines is None:
        typer.echo("note: no --lines (宝贝报表): the orders are imported without their lines", err=True)
    _import("orders", file, platform.value, as_user, mapping, lines)


@import_app.command("refunds")
def import_refunds(
    file: FileArgument, platform: PlatformOption, as_user: AsOption, mapping: MappingOption = None
) -> None:
    """Import a refund export (退款报表)."""
    _import("refunds", file, platform.value, as_user, mapping, None)


@import_app.command("reviews")
def import_reviews(
    file: FileArgument, platform: PlatformOption, as_user: AsOption, mapping: MappingOption = None
) -> None:
    """Import a review export (评价)."""
    _import("reviews", file, platform.value, as_user, mapping, None)


@import_app.command("traffic")
def import_traffic(
    file: FileArgument, platform: PlatformOption, as_user: AsOption, mapping: MappingOption = None
) -> None:
    """Import a 生意参谋 traffic export: the shop's days, or the items' days (with 商品ID)."""
    _import("traffic", file, platform.value, as_user, mapping, None)


@import_app.command("ads")
def import_ads(
    file: FileArgument,
    platform: PlatformOption,
    as_user: AsOption,
    source: AdSourceOption,
    mapping: MappingOption = None,
) -> None:
    """Import a 直通车 (--source ztc) or 钻展 (--source zz) daily report, by plan or by creative."""
    _import("ads", file, platform.value, as_user, mapping, None, ad_source=source.value)


def _import(
    kind: str,
    file: Path,
    platform: str,
    as_user: str,
    mapping_file: Path | None,
    lines: Path | None,
    *,
    ad_source: str | None = None,
) -> None:
    for path in (file, lines):
        if path is not None and not path.is_file():
            typer.echo(f"error: {path} is not a file", err=True)
            raise typer.Exit(2)
    try:
        with session_scope() as session:
            principal = principal_or_exit(session, as_user)
            check_may_import_platform_data(principal)
        mapping = load_mapping(platform, path=mapping_file, data_dir=get_settings().data_dir)
        checked = importer.check(kind, file, mapping, lines_path=lines, ad_source=ad_source)
        try:
            with ProgressBar(checked.total) as advance:
                run_id = importer.write(checked, actor=principal.name, source=f"file:{file.name}", progress=advance)
        finally:
            checked.staging.close()
        with session_scope() as session:
            report = importer.report(session, run_id)
    except ValidationFailed as exc:
        typer.echo(f"error: {exc.detail}; nothing imported", err=True)
        raise typer.Exit(1) from None
    except EcomflowError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    print_report(report)


def print_report(report: dict[str, Any]) -> None:
    """The report as a person reads it: counts, then each rejection with its file and line."""
    for rejection in report["rejections"]:
        typer.echo(f"{rejection.get('file', '')}:{rejection['line']}: {rejection['reason']}")
    typer.echo(
        f"import {report['id']} ({report['kind']}, {report['platform']}, {report['source']}): "
        f"{report['created']} created, {report['updated']} updated, {report['unchanged']} unchanged, "
        f"{report['rejected']} rejected; {report['queued']} process start(s) still queued"
    )


def sample_export(
    kind: Annotated[KindName, typer.Argument(help="which export")],
    out: Annotated[Path, typer.Argument(help="where to write (Tmall orders also write OUT-items: the 宝贝报表)")],
    platform: PlatformOption = PlatformName.tmall,
    count: Annotated[int, typer.Option("--count", min=1, help="rows (orders: orders)")] = 100,
    fmt: Annotated[str, typer.Option("--format", help=f"one of {', '.join(FORMATS)}")] = "gbk",
    malformed: Annotated[int, typer.Option("--malformed", min=0, help="rows made bad on purpose")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="the same seed makes the same rows")] = 1,
    later: Annotated[
        bool, typer.Option("--later", help="the same rows some days on: statuses moved forward, figures corrected")
    ] = False,
    source: Annotated[AdSourceName, typer.Option("--source", help="ads: ztc (直通车) or zz (钻展)")] = AdSourceName.ztc,
) -> None:
    """Write a made-up export in the platform's own format (no real customer data) to try `ecomflow import` on."""
    if fmt not in FORMATS:
        typer.echo(f"error: --format {fmt}: one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    try:
        written = write_export(
            kind.value,
            platform.value,
            out,
            count=count,
            fmt=fmt,
            malformed=malformed,
            seed=seed,
            later=later,
            ad_source=source.value,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        json.dumps({"written": [str(p) for p in written], "rows": count, "malformed": malformed}, ensure_ascii=False)
    )
