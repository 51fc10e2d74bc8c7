"""Definitions: loading and validating flows.yaml, and the shipped flows.yaml against PROCESSES.md."""

from __future__ import annotations

import copy
import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecomflow.engine.config import PACKAGED_DEFINITIONS, default_definitions_path
from ecomflow.engine.definitions.forms import validate_form
from ecomflow.engine.definitions.processes import (
    REWORK_CEILING,
    Definitions,
    Label,
    load_definitions,
    parse_definitions,
    parse_duration,
)
from ecomflow.engine.errors import DefinitionError, DefinitionMissing, UnknownProcess, UnknownStep

pytestmark = pytest.mark.db_independent

FLOWS_YAML = Path(__file__).resolve().parents[3] / "flows.yaml"

# Step keys per process, in order, as PROCESSES.md names them (plus the child links it describes).
SPEC_STEPS = {
    "quarterly_marketing_plan": [
        "collect_metrics",
        "draft_plan",
        "owner_approval",
        "decompose_targets",
        "department_strategies",
        "publish_plan",
        "campaign_plans",
        "await_quarter_end",
        "compare_targets",
        "quarter_review",
    ],
    "themed_campaign_plan": [
        "draft_campaign",
        "copy_check",
        "price_policy_check",
        "owner_price_approval",
        "record_deviations",
        "campaign_approval",
        "promo_images",
        "ads_and_events",
    ],
    "listing_module_production": [
        "write_selling_points",
        "copy_check",
        "design_module",
        "review_module",
        "archive",
        "listing_upload",
    ],
    "customer_care_copy": ["draft_copy", "copy_check", "review", "publish"],
    "page_design": ["brief", "copy_check", "design", "review", "owner_signoff", "go_live", "publish"],
    "promo_image_design": ["request", "copy_check", "design", "review", "performance_feedback", "archive"],
    "routine_promotion": [
        "weekly_review",
        "plan_actions",
        "copy_check",
        "budget_approval",
        "owner_budget_approval",
        "execute_and_report",
    ],
    "ads_and_events": [
        "select_products",
        "event_price_check",
        "budget_approval",
        "owner_budget_approval",
        "save_event",
        "sign_up",
        "review_result",
        "await_event_end",
        "track_effect",
    ],
    "presales_order": [
        "answer_inquiry",
        "answer_check",
        "stock_check",
        "shortage_decision",
        "join_wave",
        "prepare_pickup",
        "picked_up",
    ],
    # Paid platform orders, a wave at a time (the 波次; PROCESSES.md's order fulfilment inside it).
    "order_fulfilment": [
        "review_orders",
        "review_exception",
        "print_waybills",
        "pick",
        "check_and_pack",
        "ship",
        "book_out",
    ],
    "returns_exchange": [
        "policy_check",
        "cs_review",
        "goodwill_approval",
        "platform_parcel",
        "await_parcel",
        "inspect",
        "deduction_approval",
        "restock",
        "refund",
        "reship",
        "exchange_out",
        "check_rating",
        "follow_up",
    ],
    "review_follow_up": ["follow_up"],
    "product_photo_shoot": [
        "request",
        "sample_handover",
        "shoot",
        "retouch",
        "review",
        "sample_return",
        "archive",
        "listing_modules",
    ],
    "listing_upload": ["prepare_listing", "listing_check", "review", "go_live", "publish", "verify_live"],
    "daily_report": ["compute_kpis", "publish_report", "notify"],
}


@pytest.fixture(scope="module")
def shipped() -> Definitions:
    return load_definitions(FLOWS_YAML)


def label(zh: str = "名", en: str = "Name") -> dict[str, str]:
    return {"zh": zh, "en": en}


def make_raw(**overrides: Any) -> dict[str, Any]:
    """Return a small valid definitions mapping; keyword overrides replace top-level keys."""
    with FLOWS_YAML.open(encoding="utf-8") as handle:
        rules = yaml.safe_load(handle)["rules"]
    raw = {
        "version": 1,
        "calendar": {"timezone": "Asia/Shanghai"},
        "roles": {
            "owner": {"zh": "老板", "en": "Owner", "manager": True},
            "operations": {"zh": "运营", "en": "Operations", "manager": True},
            "product": {"zh": "产品", "en": "Product"},
            "promotion": {"zh": "推广", "en": "Promotion"},
            "visual": {"zh": "视觉", "en": "Visual"},
            "customer_service": {"zh": "客服", "en": "Customer service"},
            "warehouse": {"zh": "仓储物流", "en": "Warehouse"},
        },
        "rules": rules,
        "processes": {
            "demo": {
                "title": label("演示", "Demo"),
                "version": 2,
                "schedule": {"cron": "0 9 * * 1"},
                "start_form": {"fields": {"go_live_at": {"type": "datetime", "label": label()}}},
                "steps": [
                    {"key": "check", "kind": "auto", "title": label()},
                    {
                        "key": "write",
                        "kind": "human",
                        "role": "product",
                        "due": "2d",
                        "title": label(),
                        "form": {"fields": {"skus": {"type": "list", "label": label(), "items": {"type": "string"}}}},
                    },
                    {
                        "key": "review",
                        "kind": "approval",
                        "role": "operations",
                        "due": "8h",
                        "reject_to": "write",
                        "title": label(),
                    },
                    {
                        "key": "strategies",
                        "kind": "parallel",
                        "roles": ["product", "visual"],
                        "due": "3d",
                        "title": label(),
                        "form": {"fields": {"plan": {"type": "text", "label": label()}}},
                    },
                    {"key": "wait", "kind": "timer", "at": "go_live_at", "title": label()},
                    {"key": "children", "kind": "child", "process": "leaf", "each": "skus", "title": label()},
                ],
            },
            "leaf": {
                "title": label("叶", "Leaf"),
                "version": 1,
                "schedule": None,
                "start_form": {"fields": {}},
                "steps": [{"key": "only", "kind": "auto", "title": label()}],
            },
        },
    }
    raw.update(copy.deepcopy(overrides))
    return raw


def demo_step(raw: dict[str, Any], key: str) -> dict[str, Any]:
    return next(step for step in raw["processes"]["demo"]["steps"] if step["key"] == key)


def problems_of(raw: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        parse_definitions(raw)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


class TestParseDuration:
    def test_minutes_hours_and_days(self):
        assert parse_duration("10m") == timedelta(minutes=10)
        assert parse_duration("8h") == timedelta(hours=8)
        assert parse_duration("5d") == timedelta(days=5)

    @pytest.mark.parametrize("text", ["", "5", "5x", "0d", "1.5h", "-1d", "d", " 5d", "5D", 5, None])
    def test_rejects_anything_else_naming_the_rule(self, text):
        with pytest.raises(ValueError, match=r"expected a positive <int>m, <int>h or <int>d"):
            parse_duration(text)


class TestParseDefinitions:
    def test_minimal_definitions_load(self):
        definitions = parse_definitions(make_raw())
        demo = definitions.process("demo")
        assert demo.version == 2 and demo.label == Label(zh="演示", en="Demo")
        assert [s.key for s in demo.steps] == ["check", "write", "review", "strategies", "wait", "children"]
        assert demo.schedule.cron == "0 9 * * 1" and demo.schedule.timezone == "Asia/Shanghai"
        assert demo.step("write").due == timedelta(days=2)
        assert demo.step("strategies").roles == ("product", "visual")
        assert demo.step("children").process == "leaf" and demo.step("children").each == "skus"
        assert demo.step("wait").at == "go_live_at"

    def test_approval_approves_the_nearest_earlier_human_step_by_default(self):
        review = parse_definitions(make_raw()).process("demo").step("review")
        assert review.approves == "write"
        assert review.reject_to == "write"

    def test_explicit_null_approves_disables_four_eyes(self):
        raw = make_raw()
        demo_step(raw, "review")["approves"] = None
        assert parse_definitions(raw).process("demo").step("review").approves is None

    def test_only_person_steps_have_forms(self):
        demo = parse_definitions(make_raw()).process("demo")
        assert {s.key for s in demo.steps if s.form is not None} == {"write", "review", "strategies"}
        assert demo.step("review").form.field_names == ("decision", "comment")
        assert [s.is_human for s in demo.steps] == [False, True, True, True, False, False]

    def test_unknown_role_names_process_step_and_role(self):
        raw = make_raw()
        demo_step(raw, "write")["role"] = "boss"
        problems = problems_of(raw)
        assert len(problems) == 1
        assert problems[0].startswith("processes.demo.steps.write.role: unknown role 'boss' (declared: owner, ")

    def test_unknown_field_type_is_located_in_the_form(self):
        raw = make_raw()
        demo_step(raw, "write")["form"]["fields"]["skus"]["type"] = "enumm"
        problems = problems_of(raw)
        assert problems == [
            "processes.demo.steps.write.form.fields.skus: unknown type 'enumm' (expected one of string, text, "
            "integer, number, boolean, date, datetime, enum, list, object, file, image)"
        ]

    def test_every_problem_is_reported_at_once(self):
        raw = make_raw()
        raw["processes"]["demo"]["schedule"] = {"cron": "0 25 * * 1", "timezone": "Mars/Olympus"}
        demo_step(raw, "write")["due"] = "2 days"
        demo_step(raw, "review")["reject_to"] = "nowhere"
        demo_step(raw, "strategies")["roles"] = ["product", "ghost"]
        demo_step(raw, "children")["process"] = "missing"
        demo_step(raw, "check")["form"] = {"fields": {}}
        raw["processes"]["leaf"]["steps"].append({"key": "only", "kind": "auto", "title": label()})
        problems = problems_of(raw)
        expected = [
            "processes.demo.schedule.cron: cron '0 25 * * 1': hour field '25' is not valid (values 0-23)",
            "processes.demo.schedule.timezone: unknown time zone 'Mars/Olympus'",
            "processes.demo.steps.check: 'form' is not allowed on auto steps",
            "processes.demo.steps.write.due: invalid duration '2 days'",
            "processes.demo.steps.strategies.roles: unknown role 'ghost'",
            "processes.demo.steps.children.process: unknown process 'missing'",
            "processes.demo.steps.review.reject_to: process 'demo' has no step 'nowhere'",
            "processes.leaf.steps.only: duplicate step key",
        ]
        assert len(problems) == len(expected), problems
        for start in expected:
            assert any(p.startswith(start) for p in problems), (start, problems)

    @pytest.mark.parametrize(
        ("step", "change", "expected"),
        [
            ("write", {"role": None}, "processes.demo.steps.write.role: human steps need a role"),
            (
                "strategies",
                {"roles": []},
                "processes.demo.steps.strategies.roles: a parallel step needs a non-empty list",
            ),
            ("wait", {"at": None}, "processes.demo.steps.wait.at: a timer step needs 'at'"),
            ("children", {"process": None}, "processes.demo.steps.children.process: a child step needs the process"),
            ("write", {"kind": "manual"}, "processes.demo.steps.write.kind: unknown kind 'manual'"),
            ("write", {"title": {"zh": "写"}}, "processes.demo.steps.write.title.en: a non-empty en label is required"),
            ("write", {"reject_to": "check"}, "processes.demo.steps.write: 'reject_to' is not allowed on human steps"),
            ("review", {"approves": "check"}, "processes.demo.steps.review.approves: step 'check' is of kind auto"),
            ("review", {"approves": "wait"}, "processes.demo.steps.review.approves: step 'wait' does not come before"),
            ("review", {"reject_to": "review"}, "processes.demo.steps.review.reject_to: step 'review' does not come"),
            ("write", {"reminder": "weekly"}, "processes.demo.steps.write.reminder: expected 'daily' or a duration"),
            ("wait", {"at": "missing_field"}, "processes.demo.steps.wait.at: 'missing_field' is not a field"),
            (
                "children",
                {"each": "go_live_at"},
                "processes.demo.steps.children.each: field 'go_live_at' is a datetime",
            ),
            ("write", {"due": "0h"}, "processes.demo.steps.write.due: invalid duration '0h'"),
        ],
    )
    def test_step_problems_name_the_step(self, step, change, expected):
        raw = make_raw()
        target = demo_step(raw, step)
        for key, value in change.items():
            if value is None:
                target.pop(key)
            else:
                target[key] = value
        problems = problems_of(raw)
        assert any(p.startswith(expected) for p in problems), problems

    def test_timer_at_may_be_a_description(self):
        raw = make_raw()
        demo_step(raw, "wait")["at"] = "7 days after the event ends"
        assert parse_definitions(raw).process("demo").step("wait").at == "7 days after the event ends"

    def test_child_cycles_are_refused(self):
        raw = make_raw()
        raw["processes"]["leaf"]["steps"].append({"key": "back", "kind": "child", "process": "demo", "title": label()})
        problems = problems_of(raw)
        assert len(problems) == 1 and "child processes form a cycle" in problems[0]

    @pytest.mark.parametrize("cron", ["0 9 1 1,4,7,10 *", "*/15 * * * *", "0 9 * * MON-FRI", "30 18 * jan,jul 0-6/2"])
    def test_valid_crons_pass(self, cron):
        raw = make_raw()
        raw["processes"]["demo"]["schedule"]["cron"] = cron
        assert parse_definitions(raw).process("demo").schedule.cron == cron

    @pytest.mark.parametrize(
        "cron",
        [
            "0 9 * *",
            "60 * * * *",
            "0 9 32 * *",
            "0 9 * 13 *",
            "0 9 * * 8",
            "5-1 * * * *",
            "*/0 * * * *",
            "@daily",
            "0 9 * * funday",
        ],
    )
    def test_invalid_crons_are_refused(self, cron):
        raw = make_raw()
        raw["processes"]["demo"]["schedule"]["cron"] = cron
        problems = problems_of(raw)
        assert len(problems) == 1 and problems[0].startswith(f"processes.demo.schedule.cron: cron {cron!r}")

    def test_unknown_keys_are_refused_everywhere(self):
        raw = make_raw(extra=1)
        raw["processes"]["demo"]["owner"] = "x"
        raw["roles"]["owner"]["boss"] = True
        raw["calendar"]["locale"] = "zh"
        problems = problems_of(raw)
        assert problems == [
            "extra: unknown top-level key (allowed: version, calendar, sla, roles, rules, wave, processes)",
            "calendar: unknown key 'locale' (allowed: timezone, working_hours, weekends, holidays, workdays)",
            "roles.owner: unknown key 'boss' (allowed: zh, en, manager)",
            "processes.demo: unknown key 'owner' "
            "(allowed: title, version, volume, schedule, starters, start_form, steps)",
        ]

    def test_top_level_shape_problems(self):
        assert problems_of([]) == ["(top level): expected a mapping, got list"]
        problems = problems_of({"version": 0})
        assert problems[0] == "version: expected a positive integer, got 0"
        assert any(p.startswith("calendar:") for p in problems)
        assert any(p.startswith("roles:") for p in problems)
        assert any(p.startswith("rules:") for p in problems)
        assert any(p.startswith("processes:") for p in problems)

    def test_rules_are_validated(self):
        raw = make_raw()
        raw["rules"]["price_policy"]["default"] = "cheap"
        raw["rules"]["target_weights"]["months"] = [0.5, 0.5, 1.5]
        raw["rules"]["returns"]["parcel_wait"] = "a week"
        del raw["rules"]["currency"]
        problems = problems_of(raw)
        assert any(p.startswith("rules: 'currency' is a required property") for p in problems)
        assert any(p.startswith("rules.price_policy.default: 'cheap' is not one of") for p in problems)
        assert any(p.startswith("rules.returns.parcel_wait:") for p in problems)
        assert any(p.startswith("rules.target_weights.months.") for p in problems)

    def test_target_weights_must_sum_to_one_and_name_roles(self):
        raw = make_raw()
        raw["rules"]["target_weights"]["months"] = [0.2, 0.2, 0.2]
        raw["rules"]["target_weights"]["departments"]["finance"] = 0.0
        problems = problems_of(raw)
        assert problems == [
            "rules.target_weights.months: weights must sum to 1, they sum to 0.6",
            "rules.target_weights.departments.finance: not a declared role",
        ]

    def test_definitions_are_frozen_and_read_only(self):
        definitions = parse_definitions(make_raw())
        demo = definitions.process("demo")
        with pytest.raises(dataclasses.FrozenInstanceError):
            demo.version = 3  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            demo.step("write").due = None  # type: ignore[misc]
        with pytest.raises(TypeError):
            definitions.processes["x"] = demo  # type: ignore[index]
        with pytest.raises(TypeError):
            definitions.rules["owner_approval_above"] = 1  # type: ignore[index]
        assert isinstance(demo.steps, tuple)
        assert isinstance(definitions.rules["banned_terms"], tuple)

    def test_the_raw_mapping_is_not_changed(self):
        raw = make_raw()
        before = copy.deepcopy(raw)
        parse_definitions(raw)
        assert raw == before


class TestLookups:
    def test_unknown_process_is_a_definition_missing_naming_the_key(self):
        definitions = parse_definitions(make_raw())
        with pytest.raises(UnknownProcess) as caught:
            definitions.process("nope")
        assert isinstance(caught.value, DefinitionMissing) and not isinstance(caught.value, KeyError)
        assert str(caught.value) == caught.value.detail == "unknown process 'nope' (defined: demo, leaf)"
        assert caught.value.about == {"process": "nope"}

    def test_unknown_step_is_a_definition_missing_naming_process_and_step(self):
        demo = parse_definitions(make_raw()).process("demo")
        with pytest.raises(DefinitionMissing) as caught:
            demo.step("nope")
        assert isinstance(caught.value, UnknownStep) and not isinstance(caught.value, KeyError)
        assert str(caught.value).startswith("process 'demo' has no step 'nope' (steps: check, write, review")
        assert caught.value.about == {"process": "demo", "step": "nope"}

    def test_process_roles_are_every_role_used_sorted(self):
        assert parse_definitions(make_raw()).process("demo").roles == ("operations", "product", "visual")

    def test_manager_roles(self):
        assert parse_definitions(make_raw()).manager_roles == frozenset({"owner", "operations"})


class TestLoadDefinitions:
    def test_default_path_is_the_working_directorys_flows_yaml(self, tmp_path, monkeypatch):
        (tmp_path / "flows.yaml").write_text("version: 1\n", encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        assert default_definitions_path() == Path("flows.yaml")

    def test_default_path_without_one_is_the_packaged_file(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        assert default_definitions_path() == PACKAGED_DEFINITIONS
        assert PACKAGED_DEFINITIONS.read_bytes() == FLOWS_YAML.read_bytes()

    def test_missing_file(self, tmp_path):
        with pytest.raises(DefinitionError, match="cannot read the definitions file"):
            load_definitions(tmp_path / "nope.yaml")

    def test_invalid_yaml(self, tmp_path):
        path = tmp_path / "flows.yaml"
        path.write_text("roles: [unclosed\n", encoding="utf-8")
        with pytest.raises(DefinitionError, match="not valid YAML"):
            load_definitions(path)

    def test_duplicate_keys_are_refused(self, tmp_path):
        path = tmp_path / "flows.yaml"
        text = FLOWS_YAML.read_text(encoding="utf-8").replace("  currency: CNY\n", "  currency: CNY\n  currency: USD\n")
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DefinitionError) as caught:
            load_definitions(path)
        assert len(caught.value.problems) == 1
        assert "duplicate key 'currency'" in caught.value.problems[0]

    def test_yaml_booleans_in_enums_are_caught(self, tmp_path):
        path = tmp_path / "flows.yaml"
        text = FLOWS_YAML.read_text(encoding="utf-8").replace('values: ["yes", "no"]', "values: [yes, no]")
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DefinitionError) as caught:
            load_definitions(path)
        assert caught.value.problems == [
            "processes.returns_exchange.steps.inspect.form.fields.restock.values: values must be non-empty strings, "
            "got True, False (quote yes/no/on/off in YAML)"
        ]


class TestShippedFlows:
    def test_every_process_of_the_spec_is_present_with_its_steps(self, shipped):
        assert set(shipped.processes) == set(SPEC_STEPS)
        for key, steps in SPEC_STEPS.items():
            assert [s.key for s in shipped.process(key).steps] == steps, key

    def test_roles_of_the_team_model(self, shipped):
        assert list(shipped.roles) == [
            "owner",
            "operations",
            "product",
            "promotion",
            "visual",
            "customer_service",
            "warehouse",
        ]
        assert shipped.manager_roles == frozenset({"owner", "operations"})
        assert shipped.roles["warehouse"].label.zh == "仓储物流"
        assert shipped.timezone == "Asia/Shanghai"

    def test_every_process_step_and_field_has_both_labels(self, shipped):
        def fields_of(form):
            for field in form.fields:
                yield field
                yield from (field.items.fields if field.items else field.fields)

        for process in shipped.processes.values():
            assert process.label.zh and process.label.en
            forms = [process.start_form, *(s.form for s in process.steps if s.form)]
            for step in process.steps:
                assert step.label.zh and step.label.en, (process.key, step.key)
            for form in forms:
                for field in fields_of(form):
                    assert field.label.zh and field.label.en, (process.key, field.name)

    def test_every_person_step_has_a_form_and_others_none(self, shipped):
        for process in shipped.processes.values():
            for step in process.steps:
                assert (step.form is not None) == step.is_human, (process.key, step.key)

    def test_returns_exchange_steps_match_the_brief(self, shipped):
        steps = {s.key: s for s in shipped.process("returns_exchange").steps}
        kinds = {key: (s.kind, s.role) for key, s in steps.items()}
        assert kinds == {
            "policy_check": ("auto", None),
            "cs_review": ("approval", "customer_service"),
            "goodwill_approval": ("approval", "operations"),
            "platform_parcel": ("auto", None),
            "await_parcel": ("human", "customer_service"),
            "inspect": ("human", "warehouse"),
            "deduction_approval": ("approval", "operations"),
            "restock": ("auto", None),
            "refund": ("auto", None),
            "reship": ("human", "warehouse"),
            "exchange_out": ("auto", None),
            "check_rating": ("auto", None),
            "follow_up": ("human", "customer_service"),
        }
        assert steps["cs_review"].due == timedelta(days=1) and steps["cs_review"].reject_to is None
        assert steps["goodwill_approval"].approves == "cs_review"
        assert steps["await_parcel"].due == steps["await_parcel"].expires == timedelta(days=7)
        assert steps["inspect"].due == timedelta(days=2)
        assert steps["deduction_approval"].approves == "inspect" and steps["deduction_approval"].reject_to == "inspect"
        assert steps["reship"].due == timedelta(days=2) and steps["follow_up"].due == timedelta(days=1)

    def test_returns_exchange_forms(self, shipped):
        process = shipped.process("returns_exchange")
        inspect = process.step("inspect").form
        assert inspect.get_field("condition").attrs["values"] == ("ok", "damaged")
        assert inspect.get_field("restock").attrs["values"] == ("yes", "no")
        assert [f.name for f in inspect.fields if f.required] == ["condition", "restock"]
        assert validate_form(inspect, {"condition": "damaged", "restock": "no", "deduction": 20}) == []
        assert [p.field for p in validate_form(inspect, {"condition": "lost", "deduction": -1})] == [
            "condition",
            "deduction",
            "restock",
        ]
        assert process.step("await_parcel").form.json_schema["required"] == [
            "return_tracking_no",
            "return_shipping_cost",
        ]
        assert process.step("reship").form.json_schema["required"] == ["carrier", "tracking_no"]
        assert process.step("follow_up").form.get_field("contact_result").attrs["values"] == (
            "resolved",
            "unreachable",
            "escalated",
        )
        assert process.step("follow_up").form.json_schema["required"] == ["contact_result", "notes"]

    def test_returns_exchange_start_form(self, shipped):
        start = shipped.process("returns_exchange").start_form
        assert start.field_names == (
            "order_id",
            "sku",
            "kind",
            "cause",
            "reason",
            "category",
            "opened",
            "delivered_on",
            "amount",
            "quantity",
        )
        # Not delivered (仅退款 before delivery) and not opened may be left out.
        assert start.json_schema["required"] == ["order_id", "sku", "kind", "cause", "reason", "category", "amount"]
        assert start.get_field("kind").attrs["values"] == ("refund_only", "return_refund", "exchange")
        good = {
            "order_id": "TB-20250501-01",
            "sku": "TEE-RED-M",
            "kind": "return_refund",
            "cause": "faulty",
            "reason": "too small",
            "category": "normal",
            "delivered_on": "2025-05-01",
            "amount": 89.0,
        }
        assert validate_form(start, good) == []
        bad = {**good, "order_id": "#1", "kind": "refund", "delivered_on": "May 1", "amount": 0, "customer_rating": 1}
        assert [(p.field, p.rule) for p in validate_form(start, bad)] == [
            ("amount", "min"),
            ("customer_rating", "unknown_field"),
            ("delivered_on", "format"),
            ("kind", "enum"),
            ("order_id", "pattern"),
        ]
        categories = set(start.get_field("category").attrs["values"])
        assert set(shipped.rules["returns"]["excluded_categories"]) < categories
        # Digital goods are excluded only once opened or downloaded.
        assert "digital" not in shipped.rules["returns"]["excluded_categories"]
        assert shipped.rules["returns"]["excluded_when_opened"] == ("digital",)

    def test_schedules(self, shipped):
        schedules = {k: p.schedule for k, p in shipped.processes.items() if p.schedule}
        assert {k: s.cron for k, s in schedules.items()} == {
            "quarterly_marketing_plan": "0 9 1 1,4,7,10 *",
            "routine_promotion": "0 9 * * 1",
            "daily_report": "0 18 * * *",
        }
        assert {s.timezone for s in schedules.values()} == {"Asia/Shanghai"}

    def test_daily_report_is_auto_only(self, shipped):
        assert {s.kind for s in shipped.process("daily_report").steps} == {"auto"}

    def test_shared_rules(self, shipped):
        rules = shipped.rules
        assert rules["banned_terms"][:14] == (
            "最",
            "第一",
            "唯一",
            "国家级",
            "世界级",
            "顶级",
            "极品",
            "独家",
            "首个",
            "首选",
            "全网最低",
            "史无前例",
            "万能",
            "100%",
        )
        # The deck's one price: unified by default, the 20 % gap a red line.
        assert rules["price_policy"]["default"] == "unified"
        assert rules["price_policy"]["red_line"] == 0.20
        assert rules["owner_approval_above"] == 50000 and rules["currency"] == "CNY"
        assert rules["sms"]["max_chars"] == 70 and rules["sms"]["opt_out"] == "回T退订"
        assert rules["listing"]["title_max_bytes"] == 60 and rules["listing"]["min_main_images"] == 5
        assert rules["returns"]["no_reason_days"] == 7
        assert parse_duration(rules["returns"]["parcel_wait"]) == timedelta(days=7)
        assert parse_duration(rules["returns"]["refund_within"]) == timedelta(days=7)
        assert set(rules["target_weights"]["departments"]) == {
            "product",
            "promotion",
            "visual",
            "customer_service",
            "warehouse",
        }

    def test_child_links_follow_the_spec(self, shipped):
        links = {(key, s.process) for key, p in shipped.processes.items() for s in p.steps if s.kind == "child"}
        assert links == {
            ("quarterly_marketing_plan", "themed_campaign_plan"),
            ("themed_campaign_plan", "promo_image_design"),
            ("themed_campaign_plan", "ads_and_events"),
            ("product_photo_shoot", "listing_module_production"),
            ("listing_module_production", "listing_upload"),
        }

    def test_each_items_fit_the_child_start_form(self, shipped):
        for process in shipped.processes.values():
            for step in process.steps:
                if step.kind != "child" or step.each is None:
                    continue
                source = next(s.form for s in process.steps if s.form and step.each in s.form.field_names)
                items = source.get_field(step.each).items
                child_fields = shipped.process(step.process).start_form.field_names
                assert {f.name for f in items.fields} <= set(child_fields), (process.key, step.key)

    def test_approvals_loop_back_as_the_spec_says(self, shipped):
        reject_to = {
            (k, s.key): s.reject_to for k, p in shipped.processes.items() for s in p.steps if s.kind == "approval"
        }
        assert reject_to[("quarterly_marketing_plan", "owner_approval")] == "draft_plan"
        assert reject_to[("listing_module_production", "review_module")] == "design_module"
        assert reject_to[("customer_care_copy", "review")] == "draft_copy"
        assert reject_to[("page_design", "review")] == "design"
        assert reject_to[("promo_image_design", "review")] == "design"
        assert reject_to[("product_photo_shoot", "review")] == "retouch"
        assert reject_to[("listing_upload", "review")] == "prepare_listing"
        redo = shipped.process("product_photo_shoot").step("review").form.get_field("redo")
        assert redo.attrs["values"] == ("retouch", "shoot")

    def test_four_eyes_targets(self, shipped):
        campaign = shipped.process("themed_campaign_plan")
        assert campaign.step("campaign_approval").approves == "draft_campaign"
        assert campaign.step("campaign_approval").role == "operations"
        assert campaign.step("owner_price_approval").role == "owner"
        assert shipped.process("quarterly_marketing_plan").step("owner_approval").approves == "draft_plan"
        assert shipped.process("page_design").step("owner_signoff").approves == "design"

    def test_quarterly_plan_details(self, shipped):
        plan = shipped.process("quarterly_marketing_plan")
        draft = plan.step("draft_plan")
        assert draft.role == "operations" and draft.due == timedelta(days=5)
        assert draft.form.get_field("goal_focus").attrs["values"] == ("scale", "profit")
        assert {f.name for f in draft.form.get_field("campaigns").items.fields} == {
            "theme",
            "starts_on",
            "ends_on",
            "budget",
        }
        assert plan.step("owner_approval").due == timedelta(days=2)
        strategies = plan.step("department_strategies")
        assert strategies.kind == "parallel" and strategies.due == timedelta(days=3)
        assert strategies.roles == ("product", "promotion", "visual", "customer_service", "warehouse")
        assert plan.step("campaign_plans").each == "campaigns"

    def test_other_spec_details(self, shipped):
        assert shipped.process("presales_order").step("answer_inquiry").due == timedelta(minutes=10)
        assert shipped.process("ads_and_events").step("review_result").reminder == "daily"
        assert shipped.process("ads_and_events").step("await_event_end").at == "event_ends_on"
        assert shipped.process("page_design").step("go_live").at == "go_live_at"
        assert shipped.process("listing_upload").step("go_live").at == "go_live_at"
        care = shipped.process("customer_care_copy").step("draft_copy").form
        assert care.get_field("scenario").attrs["values"] == (
            "order_paid",
            "shipped",
            "delivered",
            "after_sales",
            "holiday",
            "vip_care",
        )
        assert care.get_field("channel").attrs["values"] == ("im", "sms")
        selling = shipped.process("listing_module_production").step("write_selling_points").form
        assert selling.get_field("selling_points").attrs["min_items"] == 3
        shots = shipped.process("product_photo_shoot").step("request").form.get_field("shot_list")
        # 白底图 and the main-image video are shots of their own.
        assert shots.items.attrs["values"] == ("white_background", "main_video", "main", "detail", "model", "scene")
        shoot = shipped.process("product_photo_shoot")
        assert shoot.step("listing_modules").each == "products"  # one module per product, not per SKU
        products = shoot.step("request").form.get_field("products")
        assert [f.name for f in products.items.fields] == ["product", "skus"]
        assert shoot.step("retouch").form.get_field("main_video").attrs["accept"] == ("video/mp4",)
        listing = shipped.process("listing_upload").step("prepare_listing").form
        # The listing check's rules, stated by the form.
        assert listing.get_field("main_images").attrs["min_files"] == shipped.rules["listing"]["min_main_images"]
        assert listing.get_field("title").attrs["max_bytes"] == shipped.rules["listing"]["title_max_bytes"]
        assert {p.key for p in shipped.processes.values() if p.volume == "high"} == {
            "order_fulfilment",
            "presales_order",
            "returns_exchange",
            "review_follow_up",
        }


class TestReworkCeiling:
    def test_max_rounds_defaults_to_five_and_a_step_may_set_its_own(self):
        raw = make_raw()
        demo_step(raw, "review")["max_rounds"] = 2
        process = parse_definitions(raw).process("demo")
        assert process.step("write").max_rounds == 5
        assert process.step("review").max_rounds == 2

    @pytest.mark.parametrize("bad", [0, -3, "5", True, 2.5])
    def test_max_rounds_must_be_a_positive_integer(self, bad):
        raw = make_raw()
        demo_step(raw, "write")["max_rounds"] = bad
        assert any("write.max_rounds: expected a positive integer" in p for p in problems_of(raw))

    def test_auto_steps_take_no_max_rounds(self):
        raw = make_raw()
        demo_step(raw, "check")["max_rounds"] = 3
        assert any("'max_rounds' is not allowed on auto steps" in p for p in problems_of(raw))

    def test_every_process_has_the_built_in_ceiling_step_for_a_manager(self, shipped):
        for process in shipped.processes.values():
            ceiling = process.step(REWORK_CEILING)
            assert ceiling.kind == "human"
            assert shipped.roles[ceiling.role].manager
            assert REWORK_CEILING not in [step.key for step in process.steps]  # not drawn as a step of the process
            assert validate_form(ceiling.form, {"decision": "stop", "comment": "too many rounds"}) == []
            assert {p.field for p in validate_form(ceiling.form, {"decision": "more_rounds"})} == {"comment"}

    def test_a_step_may_not_take_the_built_in_key(self):
        raw = make_raw()
        demo_step(raw, "write")["key"] = REWORK_CEILING
        assert any("built-in rework-ceiling step" in p for p in problems_of(raw))
