"""`ecomflow catalog import/export`: the whole file checked first, every bad row named, GBK and XLSX read."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from ecomflow.cli import app
from ecomflow.demo import DEMO_LOCATIONS, load_catalogue
from ecomflow.engine.db.models import AuditEvent, Location, Product, StockMovement, Variant
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.shop.catalog_import import check_file
from ecomflow.engine.shop.stock import balance, derived_balance
from ecomflow.sample_data import sample_catalogue_path
from tests.factories import make_user

pytestmark = pytest.mark.usefixtures("clean_db")
runner = CliRunner()
HEADER = (
    "product_code,title,category,brand,online_only,sku,colour,size,barcode,list_price,stock@WH-ONLINE,stock@ST-SH01"
)
GOOD = [
    "TEE,纯棉圆领T恤,T恤,棉言,no,TEE-WHT-M,白色,M,6901,199,30,5",
    "TEE,纯棉圆领T恤,T恤,棉言,no,TEE-WHT-L,白色,L,6902,199,20,0",
    "NET,网络专供速干T恤,T恤,动起来,yes,NET-BLK-M,黑色,M,,129,8,",
]


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding=encoding)
    return path


def counts() -> tuple[int, int]:
    with session_scope() as session:
        return (
            session.scalar(select(func.count()).select_from(Product)),
            session.scalar(select(func.count()).select_from(Variant)),
        )


def importer() -> str:
    principal, _ = make_user(name="li", roles=("product",))
    return principal.name


class TestImport:
    @pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
    def test_a_good_file_in_each_encoding_imports_products_variants_and_stock(
        self, tmp_path: Path, encoding: str
    ) -> None:
        user = importer()
        path = write_csv(tmp_path / "catalogue.csv", GOOD, encoding)
        result = runner.invoke(app, ["catalog", "import", str(path), "--as", user])
        assert result.exit_code == 0, result.output
        # 30, 5, 20 and 8 units; a zero opens its balance without a movement.
        assert "imported 3 variant(s) of 2 product(s); 4 stock movement(s)" in result.output
        with session_scope() as session:
            net = session.scalar(select(Product).where(Product.code == "NET"))
            assert (net.title, net.online_only) == ("网络专供速干T恤", True)
            tee = session.scalar(select(Variant).where(Variant.code == "TEE-WHT-M"))
            assert (tee.attributes, tee.list_price, tee.barcode) == (
                {"colour": "白色", "size": "M"},
                Decimal("199"),
                "6901",
            )
            assert balance(session, sku="TEE-WHT-M", location="ST-SH01") == {
                "on_hand": 5,
                "reserved": 0,
                "available": 5,
            }
            assert derived_balance(session, sku="TEE-WHT-M", location="WH-ONLINE")["on_hand"] == 30
            kinds = {loc.code: loc.kind for loc in session.scalars(select(Location))}
            assert kinds == {"WH-ONLINE": "warehouse", "ST-SH01": "store"}
            event = session.scalar(select(AuditEvent).where(AuditEvent.type == "catalog.imported"))
            assert (event.actor, event.data["variants"]) == ("li", 3)

    def test_any_bad_row_writes_nothing_and_every_bad_row_is_named_with_its_line(self, tmp_path: Path) -> None:
        user = importer()
        lines = [
            *GOOD,
            "TEE,纯棉圆领T恤,T恤,棉言,no,TEE-WHT-M,白色,M,6901,199,1,1",
            "BAD,,T恤,棉言,maybe,BAD 1,,,,-5,x,",
            "TEE,另一个标题,T恤,棉言,no,TEE-WHT-S,白色,S,,199,1,1",
        ]
        path = write_csv(tmp_path / "catalogue.csv", lines)
        result = runner.invoke(app, ["catalog", "import", str(path), "--as", user])
        assert result.exit_code == 1
        assert f"{path}:5: sku TEE-WHT-M appears on line 2 already" in result.output
        assert f"{path}:6: title is empty; sku 'BAD 1' is not a code" in result.output
        assert "list price must be a positive number, got '-5'" in result.output
        assert "online_only 'maybe' is not yes/no" in result.output
        assert "stock@WH-ONLINE 'x' is not a whole number" in result.output
        assert f"{path}:7: product TEE: title, category, brand or online_only differ from line 2" in result.output
        assert "3 bad row(s); nothing imported" in result.output
        assert counts() == (0, 0)

    def test_skip_bad_imports_the_rest_and_reports_the_bad_rows(self, tmp_path: Path) -> None:
        user = importer()
        path = write_csv(tmp_path / "catalogue.csv", [*GOOD, "BAD,坏行,T恤,,no,BAD-1,,,,abc,1,1"])
        report = tmp_path / "bad.csv"
        result = runner.invoke(
            app, ["catalog", "import", str(path), "--as", user, "--skip-bad", "--report", str(report)]
        )
        assert result.exit_code == 0, result.output
        assert counts() == (2, 3)
        assert report.read_text(encoding="utf-8-sig").splitlines() == [
            "line,reason",
            "5,list price 'abc' is not a number",
        ]

    def test_importing_the_same_file_again_moves_no_stock_and_a_new_count_moves_the_difference(
        self, tmp_path: Path
    ) -> None:
        user = importer()
        path = write_csv(tmp_path / "catalogue.csv", GOOD)
        runner.invoke(app, ["catalog", "import", str(path), "--as", user])
        again = runner.invoke(app, ["catalog", "import", str(path), "--as", user])
        assert "0 stock movement(s)" in again.output
        recount = write_csv(tmp_path / "recount.csv", [GOOD[0].replace(",30,5", ",25,5")])
        runner.invoke(app, ["catalog", "import", str(recount), "--as", user])
        with session_scope() as session:
            moves = session.scalars(
                select(StockMovement.quantity).where(
                    StockMovement.sku == "TEE-WHT-M", StockMovement.location == "WH-ONLINE"
                )
            ).all()
        assert moves == [30, -5]

    def test_an_xlsx_export_imports_back(self, tmp_path: Path) -> None:
        user = importer()
        runner.invoke(app, ["catalog", "import", str(write_csv(tmp_path / "c.csv", GOOD)), "--as", user])
        exported = tmp_path / "out.xlsx"
        assert runner.invoke(app, ["catalog", "export", str(exported)]).exit_code == 0
        checked = check_file(exported)
        assert (checked.bad, [r.variant["code"] for r in checked.rows]) == ([], ["NET-BLK-M", "TEE-WHT-L", "TEE-WHT-M"])
        assert [r.stock for r in checked.rows] == [
            {"ST-SH01": 0, "WH-ONLINE": 8},
            {"ST-SH01": 0, "WH-ONLINE": 20},
            {"ST-SH01": 5, "WH-ONLINE": 30},
        ]

    def test_a_hand_made_xlsx_with_numbers_as_cells_is_read(self, tmp_path: Path) -> None:
        book = Workbook()
        sheet = book.active
        sheet.append(HEADER.split(","))
        sheet.append(["CAP", "纯棉棒球帽", "帽子", "", "no", "CAP-BLK", "黑色", "均码", 6903, 99.0, 12, 3])
        path = tmp_path / "hand.xlsx"
        book.save(path)
        checked = check_file(path)
        assert checked.bad == []
        assert (checked.rows[0].variant["barcode"], checked.rows[0].variant["list_price"]) == ("6903", Decimal("99.00"))

    def test_a_long_import_shows_a_progress_bar(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        user = importer()
        monkeypatch.setattr("ecomflow.command_helpers.PROGRESS_FROM", 3)  # "long" from 3 rows, not 2,000
        result = runner.invoke(app, ["catalog", "import", str(write_csv(tmp_path / "c.csv", GOOD)), "--as", user])
        assert result.exit_code == 0, result.output
        assert "importing" in result.output and "3/3" in result.output
        short = runner.invoke(app, ["catalog", "import", str(write_csv(tmp_path / "d.csv", GOOD[:2])), "--as", user])
        assert "importing" not in short.output

    def test_only_the_product_role_and_managers_import(self, tmp_path: Path) -> None:
        make_user(name="wu", roles=("warehouse",))
        result = runner.invoke(app, ["catalog", "import", str(write_csv(tmp_path / "c.csv", GOOD)), "--as", "wu"])
        assert result.exit_code == 2 and "catalogue rule" in result.output
        assert counts() == (0, 0)
        result = runner.invoke(app, ["catalog", "import", str(tmp_path / "c.csv"), "--as", "nobody"])
        assert result.exit_code == 2 and "no such active user" in result.output


class TestSampleCatalogue:
    def test_the_shipped_sample_has_about_30_products_150_variants_and_3_locations_and_loads_twice(self) -> None:
        checked = check_file(sample_catalogue_path())
        assert checked.bad == []
        assert len({r.product["code"] for r in checked.rows}) == 30 and 140 <= len(checked.rows) <= 170
        assert sorted(checked.locations) == sorted(DEMO_LOCATIONS)
        assert any(r.product["online_only"] for r in checked.rows)
        assert load_catalogue() == load_catalogue() == (30, len(checked.rows))
        with session_scope() as session:
            assert session.get(Location, "ST-SH01").name == "上海南京路店"
