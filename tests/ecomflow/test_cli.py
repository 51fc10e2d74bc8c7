"""The ecomflow command: check, start."""
from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from sqlalchemy import func, select

from ecomflow.cli import app
from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from tests.factories import make_user

REPO_ROOT = Path(__file__).resolve().parents[2]

runner = CliRunner()


class TestCheck:
    def test_the_shipped_flows_yaml_is_valid(self) -> None:
        result = runner.invoke(app, ["check"])
        assert result.exit_code == 0, result.output
        assert "ok" in result.output and "processes" in result.output

    def test_errors_name_process_step_and_field(self, tmp_path: Path) -> None:
        raw = yaml.safe_load((REPO_ROOT / "flows.yaml").read_text(encoding="utf-8"))
        steps = raw["processes"]["returns_exchange"]["steps"]
        inspect = next(step for step in steps if step["key"] == "inspect")
        inspect["form"]["fields"]["condition"]["type"] = "enumm"
        review = next(step for step in steps if step["key"] == "cs_review")
        review["role"] = "intern"
        broken = tmp_path / "flows.yaml"
        broken.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

        result = runner.invoke(app, ["check", "--file", str(broken)])

        assert result.exit_code == 1
        assert "returns_exchange" in result.output
        assert "inspect" in result.output and "condition" in result.output and "enumm" in result.output
        assert "cs_review" in result.output and "intern" in result.output


VALID_RETURN = {
    "order_id": "ORD-2001", "sku": "TEE-1", "kind": "return", "reason": "质量问题", "category": "normal",
    "delivered_on": "2026-11-20", "amount": "59",
}


def start_args(process: str, business_key: str, params: dict[str, str], *, as_user: str) -> list[str]:
    args = ["start", process, "--business-key", business_key, "--as", as_user]
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    return args


class TestStart:
    def test_bad_params_are_refused_naming_each_field(self, clean_db: str) -> None:
        make_user(name="lin", roles=("customer_service",))
        result = runner.invoke(app, start_args("returns_exchange", "ORD-9", {"kind": "swap", "amount": "-1"}, as_user="lin"))
        assert result.exit_code == 2
        for field in ("kind", "amount", "order_id"):
            assert field in result.output

    def test_valid_params_start_an_instance(self, clean_db: str) -> None:
        make_user(name="lin", roles=("customer_service",))
        result = runner.invoke(app, start_args("returns_exchange", "ORD-2001", VALID_RETURN, as_user="lin"))
        assert result.exit_code == 0, result.output
        assert '"state": "running"' in result.output

    def test_a_user_outside_the_starters_is_refused_naming_the_rule(self, clean_db: str) -> None:
        make_user(name="wang", roles=("warehouse",))
        result = runner.invoke(app, start_args("returns_exchange", "ORD-2002", VALID_RETURN, as_user="wang"))
        assert result.exit_code == 2
        assert "starters rule" in result.output and "customer_service" in result.output
        with session_scope() as session:
            assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 0

    def test_an_unknown_user_is_refused(self, clean_db: str) -> None:
        result = runner.invoke(app, start_args("returns_exchange", "ORD-2003", VALID_RETURN, as_user="ghost"))
        assert result.exit_code == 2 and "--as" in result.output and "ghost" in result.output
