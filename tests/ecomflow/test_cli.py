"""The ecomflow command: init, check, start."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from ecomflow.cli import app
from ecomflow.engine.config import PACKAGED_DEFINITIONS, PACKAGED_NOTIFICATIONS
from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from tests.factories import make_user

REPO_ROOT = Path(__file__).resolve().parents[2]

runner = CliRunner()


def next_commands(output: str) -> list[str]:
    """Return the commands `init` lists after "next:", without their comments."""
    listed = output.split("next:\n", 1)[1].splitlines()
    return [line.split("#")[0].strip() for line in listed if line.strip()]


class TestInit:
    def test_writes_the_shipped_flows_yaml_into_an_empty_directory_and_names_the_next_commands(
        self, tmp_path: Path
    ) -> None:
        project = tmp_path / "shop"
        result = runner.invoke(app, ["init", str(project)])
        assert result.exit_code == 0, result.output
        assert (project / "flows.yaml").read_bytes() == PACKAGED_DEFINITIONS.read_bytes()
        assert (project / "notifications.yaml").read_bytes() == PACKAGED_NOTIFICATIONS.read_bytes()
        assert next_commands(result.output) == [f"cd {project}", "ecomflow check", "ecomflow migrate", "ecomflow up"]
        assert runner.invoke(app, ["check", "--file", str(project / "flows.yaml")]).exit_code == 0

    def test_defaults_to_the_working_directory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        result = runner.invoke(app, ["init"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "flows.yaml").read_bytes() == PACKAGED_DEFINITIONS.read_bytes()
        assert next_commands(result.output) == ["ecomflow check", "ecomflow migrate", "ecomflow up"]

    def test_refuses_a_directory_that_has_a_flows_yaml_and_leaves_it_alone(self, tmp_path: Path) -> None:
        mine = tmp_path / "flows.yaml"
        mine.write_text("version: 1  # my own processes\n", encoding="utf-8")
        result = runner.invoke(app, ["init", str(tmp_path)])
        assert result.exit_code == 2
        assert f"{mine} already exists" in result.output and "next:" not in result.output
        assert mine.read_text(encoding="utf-8") == "version: 1  # my own processes\n"

    def test_refuses_a_directory_that_has_a_notifications_yaml_and_writes_nothing(self, tmp_path: Path) -> None:
        mine = tmp_path / "notifications.yaml"
        mine.write_text("routes: []  # my own routing\n", encoding="utf-8")
        result = runner.invoke(app, ["init", str(tmp_path)])
        assert result.exit_code == 2 and f"{mine} already exists" in result.output
        assert mine.read_text(encoding="utf-8") == "routes: []  # my own routing\n"
        assert not (tmp_path / "flows.yaml").exists()

    def test_refuses_a_path_that_is_a_file(self, tmp_path: Path) -> None:
        not_a_directory = tmp_path / "notes.txt"
        not_a_directory.write_text("x", encoding="utf-8")
        result = runner.invoke(app, ["init", str(not_a_directory)])
        assert result.exit_code == 2 and "is not a directory" in result.output


class TestCheck:
    def test_the_shipped_flows_yaml_is_valid(self) -> None:
        result = runner.invoke(app, ["check"])
        assert result.exit_code == 0, result.output
        assert "ok" in result.output and "processes" in result.output

    @pytest.mark.db_independent
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


class TestCheckNotifications:
    def test_the_shipped_notifications_file_is_valid_and_unconfigured_channels_are_named(self) -> None:
        result = runner.invoke(app, ["check"])
        assert result.exit_code == 0, result.output
        assert "notifications.yaml: ok — 4 routes; channels configured: none" in result.output
        assert "routes name channel 'team', which is not configured" in result.output

    @pytest.mark.db_independent
    def test_errors_name_the_route_and_the_field(self, tmp_path: Path) -> None:
        broken = tmp_path / "notifications.yaml"
        routes = [{"events": ["task.created"], "channels": ["team"], "roles": ["intern"]}]
        broken.write_text(yaml.safe_dump({"version": 1, "routes": routes}), encoding="utf-8")
        result = runner.invoke(app, ["check", "--notifications", str(broken)])
        assert result.exit_code == 1
        assert f"{broken}: routes[0].roles[0]: unknown role 'intern'" in result.output


class TestUsersContact:
    def test_sets_and_clears_contact_details(self, clean_db: str) -> None:
        make_user(name="lin")
        result = runner.invoke(app, ["users", "contact", "lin", "--mobile", "13800000001", "--wecom-id", "LinWei"])
        assert result.exit_code == 0, result.output
        assert "mobile: 13800000001" in result.output and "wecom_id: LinWei" in result.output
        result = runner.invoke(app, ["users", "contact", "lin", "--mobile", ""])
        assert "mobile: -" in result.output and "wecom_id: LinWei" in result.output

    def test_a_bad_value_is_refused(self, clean_db: str) -> None:
        make_user(name="lin")
        result = runner.invoke(app, ["users", "contact", "lin", "--email", "not-an-address"])
        assert result.exit_code == 2 and "email: expected an email address" in result.output


VALID_RETURN = {
    "order_id": "ORD-2001",
    "sku": "TEE-1",
    "kind": "return_refund",
    "cause": "faulty",
    "reason": "质量问题",
    "category": "normal",
    "delivered_on": "2026-11-20",
    "amount": "59",
}


def start_args(process: str, business_key: str, params: dict[str, str], *, as_user: str) -> list[str]:
    args = ["start", process, "--business-key", business_key, "--as", as_user]
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    return args


class TestStart:
    def test_bad_params_are_refused_naming_each_field(self, clean_db: str) -> None:
        make_user(name="lin", roles=("customer_service",))
        result = runner.invoke(
            app, start_args("returns_exchange", "ORD-9", {"kind": "swap", "amount": "-1"}, as_user="lin")
        )
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
