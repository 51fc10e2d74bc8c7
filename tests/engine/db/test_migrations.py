"""The schema comes from the alembic migrations only, and they match the models."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, select, text
from sqlalchemy.orm import Session

from ecomflow.engine.access import may_download_attachment
from ecomflow.engine.db.migrate import alembic_config, upgrade_to_head
from ecomflow.engine.db.models import (
    Attachment,
    AuditEvent,
    Base,
    HumanTask,
    ProcessInstance,
    SignInFailure,
    User,
    WebSession,
)
from ecomflow.engine.db.sessions import get_engine, make_engine
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.versions import list_versions, spec_of_instance, store_versions
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import authenticate, hash_token
from ecomflow.engine.people.web_sessions import find_live_web_session, hash_session_secret, session_policy
from ecomflow.engine.shop.stock import derived_balance
from ecomflow.engine.tasks.actions import claim_task
from ecomflow.sample_data import return_params
from tests.conftest import BACKEND, PG_ADMIN_URL, _admin_execute


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """Return the URL of a brand-new, empty database on the backend of this run."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"ecomflow_fresh_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, Base.metadata)


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class TestUpgradeToHead:
    def test_empty_database_gets_every_table(self, empty_database_url: str) -> None:
        engine = make_engine(empty_database_url)
        try:
            assert inspect(engine).get_table_names() == []
            upgrade_to_head(empty_database_url)
            tables = set(inspect(engine).get_table_names())
            assert tables == set(Base.metadata.tables) | {"alembic_version"}
            head = ScriptDirectory.from_config(alembic_config(empty_database_url)).get_current_head()
            assert _revision(engine) == head
            assert _differences(engine) == []
        finally:
            engine.dispose()

    def test_a_fresh_database_has_the_online_warehouse(self, empty_database_url: str) -> None:
        """Paid orders with no location of their own join its waves: a fresh database must have it (0014)."""
        engine = make_engine(empty_database_url)
        try:
            upgrade_to_head(empty_database_url)
            with engine.connect() as connection:
                rows = connection.execute(text("SELECT code, kind FROM locations")).all()
            assert [tuple(row) for row in rows] == [("WH-ONLINE", "warehouse")]
        finally:
            engine.dispose()

    def test_upgrading_a_database_at_head_changes_nothing(self, empty_database_url: str) -> None:
        engine = make_engine(empty_database_url)
        try:
            upgrade_to_head(empty_database_url)
            before = {name: inspect(engine).get_columns(name) for name in Base.metadata.tables}
            upgrade_to_head(empty_database_url)
            after = {name: inspect(engine).get_columns(name) for name in Base.metadata.tables}
            assert [str(c) for cols in after.values() for c in cols] == [
                str(c) for cols in before.values() for c in cols
            ]
        finally:
            engine.dispose()


class TestMigrationsMatchModels:
    def test_autogenerate_finds_no_difference(self, database_url: str) -> None:
        assert _differences(get_engine()) == []


# --- data planted at every revision survives the upgrades, and every revision downgrades with data in it ---------

T0 = datetime(2026, 11, 1, 8, 0)  # naive UTC: what the columns store
INSTANCE_ID = "11111111-1111-4111-8111-111111111111"
OPEN_TASK_ID = "22222222-2222-4222-8222-000000000001"
OLD_TOKEN = "ecf_old-release-token"
OLD_PARAMS = return_params(order_id="ORD-OLD-1", delivered_on="2026-10-30")
OLD_SESSION_SECRET = "old-browser-session-secret"
LIVE_SESSION_ID = "55555555-5555-4555-8555-000000000001"
ENDED_SESSION_ID = "55555555-5555-4555-8555-000000000002"
NO_CONTACT = {"mobile": None, "email": None, "dingtalk_id": None, "wecom_id": None, "feishu_id": None}
OLD_CONTACTS = {"old-wu": NO_CONTACT | {"mobile": "13800000001", "email": "wu@example.com", "dingtalk_id": "ding-wu"}}
ATTACHMENT_ID = "66666666-6666-4666-8666-000000000001"
ATTACHMENT_TABLES = {"attachments", "attachment_references", "creatives"}
OLD_VERSION_TEXT = "processes:\n  page_design: {}\n"
# Tables a later revision replaced, their rows carried into the new ones (0010: the flat SKUs into master data).
REPLACED_TABLES = {"skus", "stock_reservations"}
# Columns a round trip through 0010 cannot keep: one price now, so the old online price comes back as the list price.
LOST_BY_0010 = {("skus", "online_price")}
# Columns a later revision adds keep NULL in old rows, except these, which their migration fills.
FILLED_BY_MIGRATION = {("human_tasks", "lane"): "", ("human_tasks", "at_risk"): False}
# Rows a revision adds to every database (0010 when it carries stock over, 0014 always): not planted, not lost.
ADDED_BY_MIGRATION = {"locations": ("code", "WH-ONLINE")}


def _task_row(number: int, *, step: str, role: str, state: str, **values: Any) -> dict[str, Any]:
    """Return a human_tasks row of the old instance; values may name columns of later revisions."""
    row = {
        "id": f"22222222-2222-4222-8222-{number:012d}",
        "instance_id": INSTANCE_ID,
        "process_key": "returns_exchange",
        "step_key": step,
        "kind": "human",
        "round": 1,
        "role": role,
        "state": state,
        "assignee": None,
        "excluded_users": [],
        "priority": 0,
        "due_at": T0 + timedelta(days=2),
        "expires_at": None,
        "context": {"order_id": "ORD-OLD-1"},
        "output": None,
        "completed_by": None,
        "version": 1,
        "suspend_seq": 0,
        "created_at": T0,
        "claimed_at": None,
        "completed_at": None,
        "lane": "",
        "at_risk": False,
    }
    return row | values


OLD_TASKS = [
    _task_row(1, step="inspect", role="warehouse", state="open", at_risk=True),
    _task_row(2, step="reship", role="warehouse", state="claimed", assignee="old-wu", version=2, claimed_at=T0),
    _task_row(
        3,
        step="await_parcel",
        role="customer_service",
        state="completed",
        assignee="old-chen",
        version=3,
        output={"return_tracking_no": "SF1234567890"},
        completed_by="old-chen",
        completed_at=T0 + timedelta(hours=3),
        expires_at=T0 + timedelta(days=7),
        remind_at=T0 + timedelta(days=1),
        escalated_to="managers",
    ),
    _task_row(4, step="goodwill_approval", role="operations", state="cancelled", version=2, completed_at=T0),
    _task_row(
        5,
        step="cs_review",
        role="customer_service",
        state="expired",
        version=2,
        completed_at=T0,
        excluded_users=["old-wu"],
    ),
]


class RevisionSchema:
    """The tables of a database as one revision made them, reflected from the database itself."""

    def __init__(self, connection: Connection) -> None:
        self.metadata = MetaData()
        self.metadata.reflect(connection)

    def columns(self) -> dict[str, set[str]]:
        return {name: {column.name for column in table.columns} for name, table in self.metadata.tables.items()}

    def insert(self, connection: Connection, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Insert the rows with the columns this revision has; return them as inserted, or None without the table."""
        assert name in Base.metadata.tables or name in REPLACED_TABLES, f"no table {name} at head either"
        table = self.metadata.tables.get(name)
        if table is None:
            return None
        kept = [{column: value for column, value in row.items() if column in table.columns} for row in rows]
        connection.execute(table.insert(), kept)
        return kept


@dataclass
class Planted:
    """Rows planted in a database, per table, with only the columns they were inserted with."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def as_of(self, columns: dict[str, set[str]]) -> Planted:
        """Return what survives a schema with these columns: its tables, and of each row its columns."""
        return Planted(
            {
                name: [{c: v for c, v in row.items() if c in columns[name]} for row in rows]
                for name, rows in self.rows.items()
                if name in columns
            }
        )


def plant_old_data(connection: Connection) -> Planted:
    """Insert a returns case in several task states with everything around it, as the revision's schema allows."""
    schema, planted = RevisionSchema(connection), Planted()

    def insert(name: str, rows: list[dict[str, Any]]) -> None:
        kept = schema.insert(connection, name, rows)
        if kept is not None:
            planted.rows[name] = kept

    insert(
        "users",
        [
            {"name": name, "active": name != "old-gone", "created_at": T0, **OLD_CONTACTS.get(name, NO_CONTACT)}
            for name in ("old-wu", "old-ops", "old-chen", "old-gone")
        ],
    )
    user_id = dict(connection.execute(text("SELECT name, id FROM users")).all())
    roles = [
        ("old-wu", "warehouse"),
        ("old-ops", "operations"),
        ("old-chen", "customer_service"),
        ("old-gone", "warehouse"),
    ]
    insert("user_roles", [{"user_id": user_id[name], "role": role} for name, role in roles])
    insert(
        "api_tokens",
        [
            {"user_id": user_id["old-wu"], "token_hash": hash_token(OLD_TOKEN), "created_at": T0, "revoked_at": None},
            {
                "user_id": user_id["old-ops"],
                "token_hash": hash_token("ecf_revoked"),
                "created_at": T0,
                "revoked_at": T0,
            },
        ],
    )
    insert(
        "process_instances",
        [
            {
                "id": INSTANCE_ID,
                "process_key": "returns_exchange",
                "definition_version": 1,
                "business_key": "BK-OLD-1",
                "active_key": "BK-OLD-1",
                "state": "waiting",
                "params": OLD_PARAMS,
                "result": None,
                "parent_id": None,
                "parent_step": None,
                "flow_run_id": "33333333-3333-4333-8333-333333333333",
                "started_by": "old-ops",
                "created_at": T0,
                "updated_at": T0,
                "ended_at": None,
            }
        ],
    )
    insert("human_tasks", OLD_TASKS)
    completed = OLD_TASKS[2]["id"]
    insert("task_comments", [{"task_id": completed, "author": "old-chen", "text": "包裹已签收", "created_at": T0}])
    insert(
        "audit_events",
        [
            *[
                {
                    "at": T0,
                    "type": "task.created",
                    "actor": "system",
                    "instance_id": INSTANCE_ID,
                    "task_id": t["id"],
                    "data": {"step": t["step_key"]},
                }
                for t in OLD_TASKS
            ],
            {
                "at": T0,
                "type": "task.completed",
                "actor": "old-chen",
                "instance_id": INSTANCE_ID,
                "task_id": completed,
                "data": {"from": "claimed", "action": "complete"},
            },
        ],
    )
    insert(
        "outbox",
        [
            {
                "kind": "resume_run",
                "instance_id": INSTANCE_ID,
                "task_id": completed,
                "payload": {"pause_key_prefix": f"task:{completed}:"},
                "created_at": T0,
                "available_at": T0,
                "locked_until": None,
                "attempts": 1,
                "delivered_at": T0,
                "last_error": None,
            },
            {
                "kind": "start_run",
                "instance_id": INSTANCE_ID,
                "task_id": None,
                "payload": {},
                "created_at": T0,
                "available_at": T0,
                "locked_until": None,
                "attempts": 3,
                "delivered_at": None,
                "last_error": "prefect down",
            },
        ],
    )
    insert(
        "step_results",
        [
            {
                "key": f"{INSTANCE_ID}:policy_check:1",
                "instance_id": INSTANCE_ID,
                "step_key": "policy_check",
                "result": {"eligible": True},
                "created_at": T0,
            }
        ],
    )
    insert(
        "refunds",
        [
            {
                "instance_id": INSTANCE_ID,
                "order_id": "ORD-OLD-1",
                "amount": Decimal("199.00"),
                "deduction": Decimal("20.50"),
                "currency": "CNY",
                "provider_ref": "PAY-1",
                "received_at": T0,
                "due_by": T0 + timedelta(days=3),
                "created_at": T0,
            }
        ],
    )
    insert(
        "idempotent_responses",
        [
            {
                "user_name": "old-chen",
                "key": "k-1",
                "request_path": f"/tasks/{completed}/complete",
                "status_code": 200,
                "body": {"id": completed, "state": "completed"},
                "created_at": T0,
            }
        ],
    )
    insert("order_ratings", [{"order_id": "ORD-OLD-1", "rating": 5, "recorded_at": T0}])
    insert(
        "timers",
        [
            {
                "id": "44444444-4444-4444-8444-444444444444",
                "instance_id": INSTANCE_ID,
                "step_key": "await_parcel_timer",
                "round": 1,
                "fire_at": T0 + timedelta(days=7),
                "fired_at": None,
                "suspend_seq": 1,
                "created_at": T0,
            }
        ],
    )
    insert(
        "skus",
        [
            {
                "sku": "OLD-SKU-1",
                "name": "旧款T恤",
                "category": "normal",
                "online_price": Decimal("179.00"),
                "offline_price": Decimal("199.00"),
                "price_policy": "flexible",
                "stock": 7,
                "updated_at": T0,
            }
        ],
    )
    insert(
        "stock_reservations",
        [
            {
                "key": f"{INSTANCE_ID}:OLD-SKU-1",
                "order_key": INSTANCE_ID,
                "instance_id": INSTANCE_ID,
                "sku": "OLD-SKU-1",
                "quantity": 1,
                "fulfilment": "ship",
                "created_at": T0,
                "released_at": None,
            }
        ],
    )
    insert(
        "flow_run_leases",
        [
            {
                "flow_run_id": "33333333-3333-4333-8333-333333333333",
                "worker_id": "worker-old",
                "leased_until": T0,
                "takes": 2,
                "taken_at": T0,
            }
        ],
    )
    insert(
        "web_sessions",
        [
            {
                "id": LIVE_SESSION_ID,
                "user_id": user_id["old-wu"],
                "secret_hash": hash_session_secret(OLD_SESSION_SECRET),
                "created_at": T0,
                "last_seen_at": T0,
                "expires_at": T0 + timedelta(hours=12),
                "revoked_at": None,
                "revoke_reason": None,
                "client_address": "10.0.0.9",
                "user_agent": "Mozilla/5.0 (old)",
            },
            {
                "id": ENDED_SESSION_ID,
                "user_id": user_id["old-chen"],
                "secret_hash": hash_session_secret("ended-secret"),
                "created_at": T0,
                "last_seen_at": T0,
                "expires_at": T0 + timedelta(hours=12),
                "revoked_at": T0,
                "revoke_reason": "signed_out",
                "client_address": None,
                "user_agent": None,
            },
        ],
    )
    insert(
        "sign_in_failures",
        [
            {"scope": "name", "key": "old-wu", "at": T0},
            {"scope": "address", "key": "10.0.0.9", "at": T0},
        ],
    )
    insert("channel_sends", [{"channel": "team-dingtalk", "sent_at": T0}])
    insert("daily_digest_runs", [{"day": "2026-11-01", "made_at": T0}])
    insert(
        "attachments",
        [
            {
                "id": ATTACHMENT_ID,
                "sha256": "ab" * 32,
                "size": 12345,
                "content_type": "image/jpeg",
                "filename": "白底主图.jpg",
                "width": 800,
                "height": 800,
                "image_facts": {"border_histogram": [0] * 255 + [100]},
                "has_thumbnail": True,
                "uploaded_by": "old-wu",
                "uploaded_at": T0,
            }
        ],
    )
    insert(
        "attachment_references",
        [
            {
                "attachment_id": ATTACHMENT_ID,
                "instance_id": INSTANCE_ID,
                "task_id": "",
                "field": "photos[0]",
                "created_at": T0,
            }
        ],
    )
    insert(
        "creatives",
        [
            {
                "instance_id": INSTANCE_ID,
                "process_key": "promo_image_design",
                "title": "双11海报",
                "campaign": "双11",
                "skus": ["TEE-1"],
                "attachment_ids": [ATTACHMENT_ID],
                "figures": {"click_through_rate": 0.03},
                "ad_creative_id": "880001000",
                "approved_by": "old-chen",
                "approved_at": T0,
            }
        ],
    )
    insert(
        "definition_versions",
        [
            {
                "process_key": "page_design",
                "version": 1,
                "declared_version": 1,
                "sha256": "0" * 64,
                "text": OLD_VERSION_TEXT,
                "stored_at": T0,
            }
        ],
    )
    # Master data and the stock ledger (0010).
    insert("locations", [{"code": "ST-OLD", "name": "老店", "kind": "store", "created_at": T0}])
    insert(
        "products",
        [
            {
                "id": 901,
                "code": "PRD-NEW",
                "title": "新款卫衣",
                "category": "卫衣",
                "brand": "棉言",
                "online_only": False,
                "created_at": T0,
                "updated_at": T0,
            }
        ],
    )
    insert(
        "variants",
        [
            {
                "id": 902,
                "code": "PRD-NEW-M",
                "product_id": 901,
                "attributes": {"colour": "灰色", "size": "M"},
                "barcode": "690000000001",
                "list_price": Decimal("299.00"),
                "created_at": T0,
                "updated_at": T0,
            }
        ],
    )
    insert(
        "stock_movements",
        [
            {
                "id": 903,
                "kind": "adjust",
                "sku": "PRD-NEW-M",
                "location": "ST-OLD",
                "quantity": 4,
                "business_key": "count/2026-11-01",
                "reason": "opening count",
                "instance_id": None,
                "actor": "old-wu",
                "created_at": T0,
            }
        ],
    )
    insert(
        "stock_balances",
        [{"sku": "PRD-NEW-M", "location": "ST-OLD", "on_hand": 4, "reserved": 0, "updated_at": T0}],
    )
    plant_platform_data(insert)
    return planted


def plant_platform_data(insert: Callable[[str, list[dict[str, Any]]], None]) -> None:
    """Insert an imported order in a wave, its line and history, a refund, a review, an import run and a push."""
    insert(
        "waves",
        [{"id": 911, "location": "ST-OLD", "state": "closed", "opened_at": T0, "closes_at": T0, "order_count": 1}],
    )
    digest = "0" * 64
    insert(
        "platform_orders",
        [
            {
                "id": 912,
                "platform": "tmall",
                "order_no": "3801234567890",
                "buyer_nick": "t**1",
                "receiver_phone": "138****0001",
                "status": "paid",
                "platform_status": "买家已付款，等待卖家发货",
                "paid_amount": Decimal("299.00"),
                "ordered_at": T0,
                "paid_at": T0,
                "address_changed": False,
                "wave_id": 911,
                "fulfilment_state": "in_wave",
                "content_hash": digest,
                "imported_at": T0,
                "updated_at": T0,
            }
        ],
    )
    insert(
        "platform_order_lines",
        [
            {
                "id": 913,
                "order_id": 912,
                "line_no": 1,
                "sku": "PRD-NEW-M",
                "title": "新款卫衣",
                "quantity": 1,
                "price": Decimal("299.00"),
            }
        ],
    )
    insert(
        "platform_order_events",
        [{"id": 914, "order_id": 912, "at": T0, "type": "order.joined_wave", "actor": "system", "data": {"wave": 911}}],
    )
    common = {
        "platform": "tmall",
        "order_no": "3801234567890",
        "content_hash": digest,
        "imported_at": T0,
        "updated_at": T0,
    }
    insert(
        "platform_refunds",
        [
            common
            | {
                "id": 915,
                "refund_no": "RF-1",
                "kind": "refund_only",
                "status": "requested",
                "platform_status": "买家已经申请退款，等待卖家同意",
                "amount": Decimal("99.50"),
                "requested_at": T0,
            }
        ],
    )
    insert(
        "platform_reviews",
        [common | {"id": 916, "review_id": "RV-1", "rating": 1, "rating_label": "差评", "reviewed_at": T0}],
    )
    insert(
        "import_runs",
        [
            {
                "id": "77777777-7777-4777-8777-000000000001",
                "kind": "orders",
                "platform": "tmall",
                "source": "file:orders.csv",
                "actor": "old-chen",
                "started_at": T0,
                "created": 1,
                "updated": 0,
                "unchanged": 0,
                "rejected": 1,
                "rejections": [{"line": 3, "reason": "订单编号: required"}],
            }
        ],
    )
    insert("inbound_deliveries", [{"source": "jst", "delivery_id": "D-1", "received_at": T0}])
    stamps = {"platform": "tmall", "content_hash": digest, "imported_at": T0, "updated_at": T0}
    insert(
        "traffic_daily",
        [
            stamps
            | {
                "id": 917,
                "row_key": "2026-11-01|棉言旗舰店|",
                "day": date(2026, 11, 1),
                "store": "棉言旗舰店",
                "visitors": 1234,
                "page_views": 3702,
                "paid_buyers": 41,
                "paid_amount": Decimal("8120.50"),
            }
        ],
    )
    insert(
        "ad_daily",
        [
            stamps
            | {
                "id": 918,
                "row_key": "ztc|2026-11-01||爆款卫衣|880001000",
                "source": "ztc",
                "day": date(2026, 11, 1),
                "plan": "爆款卫衣",
                "creative_id": "880001000",
                "impressions": 20000,
                "clicks": 410,
                "spend": Decimal("380.20"),
                "gmv": Decimal("1592.00"),
            }
        ],
    )


def check_data_survived(engine: Engine, planted: Planted) -> None:
    """Assert every planted row is still there with its values.

    Columns it was planted without hold their defaults.
    """
    with engine.connect() as connection:
        schema = RevisionSchema(connection)
        for name, rows in planted.rows.items():
            if name in REPLACED_TABLES and name not in schema.metadata.tables:
                check_skus_carried(connection, schema, planted)
                continue
            table = schema.metadata.tables[name]
            inserted_columns = set(rows[0])
            stored = [dict(row._mapping) for row in connection.execute(select(table))]
            if name in ADDED_BY_MIGRATION:
                column, value = ADDED_BY_MIGRATION[name]
                stored = [row for row in stored if row[column] != value or any(r[column] == value for r in rows)]
            # Autoincrement ids were the database's to choose; every other column is compared.
            later = [c.name for c in table.columns if c.name not in inserted_columns and c.name != "id"]
            expected = [row | {c: FILLED_BY_MIGRATION.get((name, c)) for c in later} for row in rows]
            found = [{c: row[c] for c in (*inserted_columns, *later)} for row in stored]
            lost = {c for t, c in LOST_BY_0010 if t == name}
            if lost:
                found = [{c: v for c, v in row.items() if c not in lost} for row in found]
                expected = [{c: v for c, v in row.items() if c not in lost} for row in expected]
            assert _unordered(found) == _unordered(expected), name


def check_skus_carried(connection: Connection, schema: RevisionSchema, planted: Planted) -> None:
    """The old flat SKU is a product with one variant priced at its store price, its stock in the ledger."""
    tables = schema.metadata.tables
    old = planted.rows["skus"][0]
    variant = connection.execute(select(tables["variants"]).where(tables["variants"].c.code == old["sku"])).one()
    assert variant.list_price == old["offline_price"]
    product = connection.execute(select(tables["products"]).where(tables["products"].c.id == variant.product_id)).one()
    assert (product.code, product.title, product.online_only) == (old["sku"], old["name"], False)
    held = sum(r["quantity"] for r in planted.rows.get("stock_reservations", []) if r.get("released_at") is None)
    balance = connection.execute(
        select(tables["stock_balances"]).where(tables["stock_balances"].c.sku == old["sku"])
    ).one()
    # The old stock was what was left over; the held units are still on hand, reserved.
    assert (balance.location, balance.on_hand, balance.reserved) == ("WH-ONLINE", old["stock"] + held, held)
    movements = connection.execute(
        select(tables["stock_movements"].c.kind, tables["stock_movements"].c.quantity)
        .where(tables["stock_movements"].c.sku == old["sku"])
        .order_by(tables["stock_movements"].c.kind)
    ).all()
    assert [tuple(m) for m in movements] == [("adjust", old["stock"] + held)] + ([("reserve", held)] if held else [])


def _unordered(rows: list[dict[str, Any]]) -> list[str]:
    """Return rows in a form that compares equal whatever the order of rows and of their keys."""
    return sorted(repr(sorted(row.items())) for row in rows)


def check_app_works_on_old_rows(engine: Engine) -> None:
    """The ORM reads the old rows, the old token still logs in, and an old open task can be claimed."""
    with Session(engine) as session:
        principal = authenticate(session, OLD_TOKEN)
        assert principal == Principal(name="old-wu", roles=frozenset({"warehouse"}))
        instance = session.get(ProcessInstance, INSTANCE_ID)
        assert (instance.state, instance.params, instance.created_at) == ("waiting", OLD_PARAMS, T0.replace(tzinfo=UTC))
        completed = session.get(HumanTask, OLD_TASKS[2]["id"])
        assert (completed.output, completed.completed_by) == (OLD_TASKS[2]["output"], "old-chen")
        claimed = claim_task(session, task_id=OPEN_TASK_ID, principal=principal)
        session.commit()
        assert (claimed.state, claimed.assignee, claimed.version, claimed.lane) == ("claimed", "old-wu", 2, "")
        events = session.scalars(
            select(AuditEvent.type).where(AuditEvent.task_id == OPEN_TASK_ID).order_by(AuditEvent.id)
        )
        assert list(events) == ["task.created", "task.claimed"]


def _revisions_oldest_first() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


REVISIONS = _revisions_oldest_first()


class TestOldDataSurvivesUpgrades:
    @pytest.mark.parametrize("revision", REVISIONS)
    def test_data_planted_at_revision_survives_upgrade_to_head(self, empty_database_url: str, revision: str) -> None:
        engine = make_engine(empty_database_url)
        try:
            command.upgrade(alembic_config(empty_database_url), revision)
            with engine.begin() as connection:
                planted = plant_old_data(connection)
            command.upgrade(alembic_config(empty_database_url), "head")
            assert _revision(engine) == REVISIONS[-1]
            check_data_survived(engine, planted)
            check_app_works_on_old_rows(engine)
        finally:
            engine.dispose()

    @pytest.mark.parametrize("revision", REVISIONS[1:])
    def test_revision_downgrades_with_data_and_upgrades_again(self, empty_database_url: str, revision: str) -> None:
        config = alembic_config(empty_database_url)
        previous = ScriptDirectory.from_config(config).get_revision(revision).down_revision
        engine = make_engine(empty_database_url)
        try:
            command.upgrade(config, previous)
            with engine.connect() as connection:
                columns_before = RevisionSchema(connection).columns()
            command.upgrade(config, revision)
            with engine.begin() as connection:
                planted = plant_old_data(connection)
            command.downgrade(config, previous)
            assert _revision(engine) == previous
            with engine.connect() as connection:
                columns_after = RevisionSchema(connection).columns()
            # The downgrade takes away what the revision added and nothing else: the previous schema is back.
            assert columns_after == columns_before
            kept = planted.as_of(columns_after)
            assert {"users", "process_instances", "human_tasks"} <= set(kept.rows)
            check_data_survived(engine, kept)
            command.upgrade(config, "head")
            check_data_survived(engine, kept)
            assert _differences(engine) == []
            check_app_works_on_old_rows(engine)
        finally:
            engine.dispose()

    def test_first_revision_downgrades_with_data_to_an_empty_database(self, empty_database_url: str) -> None:
        config = alembic_config(empty_database_url)
        engine = make_engine(empty_database_url)
        try:
            command.upgrade(config, REVISIONS[0])
            with engine.begin() as connection:
                planted = plant_old_data(connection)
            assert planted.rows["human_tasks"]
            command.downgrade(config, "base")
            assert _revision(engine) is None
            with engine.connect() as connection:
                assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
            command.upgrade(config, "head")
            with engine.connect() as connection:
                for name in ("users", "process_instances", "human_tasks", "audit_events"):
                    assert connection.scalar(text(f"SELECT count(*) FROM {name}")) == 0, name
        finally:
            engine.dispose()


class TestWebSessionsMigration:
    """0005 adds web_sessions and sign_in_failures; its downgrade drops them and nothing else."""

    def test_sessions_and_failures_work_after_the_upgrade_and_the_downgrade_drops_only_them(
        self, empty_database_url: str
    ) -> None:
        config = alembic_config(empty_database_url)
        engine = make_engine(empty_database_url)
        try:
            command.upgrade(config, "0005")
            with engine.begin() as connection:
                planted = plant_old_data(connection)
            assert {"web_sessions", "sign_in_failures"} <= set(planted.rows)
            # The ORM maps the head schema: read the rows 0005 planted through it once later revisions are in.
            command.upgrade(config, "head")
            with Session(engine) as session:
                soon = T0.replace(tzinfo=UTC) + timedelta(minutes=5)
                found = find_live_web_session(session, secret=OLD_SESSION_SECRET, now=soon, policy=session_policy())
                assert found is not None and (found[0].id, found[1].name) == (LIVE_SESSION_ID, "old-wu")
                assert session.get(WebSession, ENDED_SESSION_ID).revoke_reason == "signed_out"
                assert session.scalar(select(SignInFailure.key).where(SignInFailure.scope == "address")) == "10.0.0.9"
            command.downgrade(config, "0004")
            assert _revision(engine) == "0004"
            tables = set(inspect(engine).get_table_names())
            assert not {"web_sessions", "sign_in_failures"} & tables
            with engine.connect() as connection:
                kept = planted.as_of(RevisionSchema(connection).columns())
            assert set(kept.rows) == set(planted.rows) - {"web_sessions", "sign_in_failures"}
            check_data_survived(engine, kept)
            command.upgrade(config, "head")
            check_data_survived(engine, kept)
            assert _differences(engine) == []
            check_app_works_on_old_rows(engine)
        finally:
            engine.dispose()


class TestNotificationChannelsMigration:
    """0008 adds users' contact details, channel sends, daily digest runs and outbox.delivered_with; its downgrade
    drops exactly those."""

    NEW_TABLES = frozenset({"channel_sends", "daily_digest_runs"})
    NEW_USER_COLUMNS = frozenset({"mobile", "email", "dingtalk_id", "wecom_id", "feishu_id"})

    def test_contacts_survive_and_the_downgrade_drops_only_what_0008_added(self, empty_database_url: str) -> None:
        config = alembic_config(empty_database_url)
        engine = make_engine(empty_database_url)
        try:
            command.upgrade(config, "0008")
            with engine.begin() as connection:
                planted = plant_old_data(connection)
            assert set(planted.rows) >= self.NEW_TABLES
            with Session(engine) as session:
                wu = session.scalar(select(User).where(User.name == "old-wu"))
                assert (wu.mobile, wu.email, wu.dingtalk_id, wu.wecom_id) == (
                    "13800000001",
                    "wu@example.com",
                    "ding-wu",
                    None,
                )
            command.downgrade(config, "0007")
            assert _revision(engine) == "0007"
            inspector = inspect(engine)
            assert not self.NEW_TABLES & set(inspector.get_table_names())
            assert not self.NEW_USER_COLUMNS & {c["name"] for c in inspector.get_columns("users")}
            assert "delivered_with" not in {c["name"] for c in inspector.get_columns("outbox")}
            with engine.connect() as connection:
                kept = planted.as_of(RevisionSchema(connection).columns())
            assert set(kept.rows) == set(planted.rows) - self.NEW_TABLES
            check_data_survived(engine, kept)
            command.upgrade(config, "head")
            check_data_survived(engine, kept)
            assert _differences(engine) == []
            check_app_works_on_old_rows(engine)
        finally:
            engine.dispose()


class TestAttachmentsMigration:
    """0007 adds attachments, their references and the design archive; its downgrade drops them and nothing else."""

    def test_attachments_work_after_the_upgrade_and_the_downgrade_drops_only_them(
        self, empty_database_url: str
    ) -> None:
        config = alembic_config(empty_database_url)
        engine = make_engine(empty_database_url)
        try:
            command.upgrade(config, "0007")
            with engine.begin() as connection:
                planted = plant_old_data(connection)
            assert set(planted.rows) >= ATTACHMENT_TABLES
            with Session(engine) as session:
                attachment = session.get(Attachment, ATTACHMENT_ID)
                assert (attachment.width, attachment.image_facts["border_histogram"][255]) == (800, 100)
                reader = Principal(name="old-chen", roles=frozenset({"warehouse"}))
                assert may_download_attachment(session, reader, attachment) is True
                stranger = Principal(name="stranger", roles=frozenset({"visual"}))
                assert may_download_attachment(session, stranger, attachment) is False
            command.downgrade(config, "0005")
            assert not ATTACHMENT_TABLES & set(inspect(engine).get_table_names())
            with engine.connect() as connection:
                kept = planted.as_of(RevisionSchema(connection).columns())
            assert set(kept.rows) == set(planted.rows) - ATTACHMENT_TABLES
            check_data_survived(engine, kept)
            command.upgrade(config, "head")
            check_data_survived(engine, kept)
            assert _differences(engine) == []
        finally:
            engine.dispose()


class TestMasterDataMigration:
    """0010 turns the flat SKUs into products, variants and ledger movements; its downgrade turns them back."""

    def test_old_skus_become_master_data_and_the_downgrade_rebuilds_them(self, empty_database_url: str) -> None:
        config = alembic_config(empty_database_url)
        engine = make_engine(empty_database_url)
        try:
            command.upgrade(config, "0009")
            with engine.begin() as connection:
                planted = plant_old_data(connection)
            assert {"skus", "stock_reservations"} <= set(planted.rows) and "products" not in planted.rows
            command.upgrade(config, "0010")
            with engine.connect() as connection:
                check_skus_carried(connection, RevisionSchema(connection), planted)
            with Session(engine) as session:
                # The carried balance is what its movements sum to.
                assert derived_balance(session, sku="OLD-SKU-1", location="WH-ONLINE") == {
                    "on_hand": 8,
                    "reserved": 1,
                    "available": 7,
                }
            command.downgrade(config, "0009")
            with engine.connect() as connection:
                sku = connection.execute(text("SELECT sku, offline_price, stock FROM skus")).one()
                held = connection.execute(text("SELECT key, quantity FROM stock_reservations")).one()
            assert (sku.sku, sku.offline_price, sku.stock) == ("OLD-SKU-1", Decimal("199.00"), 7)
            assert (held.key, held.quantity) == (f"{INSTANCE_ID}:OLD-SKU-1", 1)
            assert not {"products", "variants", "stock_movements", "stock_balances"} & set(
                inspect(engine).get_table_names()
            )
            command.upgrade(config, "head")
            assert _differences(engine) == []
        finally:
            engine.dispose()


class TestDefinitionVersionsMigration:
    """0009 adds definition_versions; instances of the old release pin to what `ecomflow migrate` stores after it."""

    def test_old_instances_find_their_version_once_stored_and_the_downgrade_drops_only_the_table(
        self, empty_database_url: str
    ) -> None:
        config = alembic_config(empty_database_url)
        engine = make_engine(empty_database_url)
        try:
            command.upgrade(config, "0008")
            with engine.begin() as connection:
                planted = plant_old_data(connection)
            assert "definition_versions" not in planted.rows
            command.upgrade(config, "0009")
            with Session(engine) as session:
                # 0009 stored version 1 as the old release defined returns_exchange: its case keeps its kinds.
                instance = session.get(ProcessInstance, INSTANCE_ID)
                old_spec = spec_of_instance(session, instance)
                assert old_spec.version == 1
                assert old_spec.start_form.get_field("kind").attrs["values"] == ("return", "exchange")
                assert [v.version for v in list_versions(session, "returns_exchange")] == [1]
                # Only processes with instances get an old version; `ecomflow migrate` stores today's after it.
                assert list_versions(session, "daily_report") == []
                stored = {v.process_key: v for v in store_versions(session, get_definitions())}
                session.commit()
                assert (stored["returns_exchange"].version, stored["returns_exchange"].declared_version) == (
                    2,
                    get_definitions().process("returns_exchange").version,
                )
                assert spec_of_instance(session, session.get(ProcessInstance, INSTANCE_ID)).version == 1
            command.downgrade(config, "0008")
            assert "definition_versions" not in set(inspect(engine).get_table_names())
            check_data_survived(engine, planted)
            command.upgrade(config, "head")
            assert _differences(engine) == []
            check_app_works_on_old_rows(engine)
        finally:
            engine.dispose()
