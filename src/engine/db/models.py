"""SQLAlchemy models: the runtime state of every process, task and delivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sqltypes import UTCDateTime

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def new_id() -> str:
    """Return a fresh random id; random so that ids reveal nothing."""
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        Decimal: Numeric(14, 2),
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Away (leave, sick): set while absent; new work goes to the substitute or back to the queue.
    away_since: Mapped[datetime | None] = mapped_column(default=None)
    away_until: Mapped[datetime | None] = mapped_column(default=None)
    substitute: Mapped[str | None] = mapped_column(String(64), default=None)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    # Where notifications reach the person: @-mentions in the team's IM groups, and email.
    mobile: Mapped[str | None] = mapped_column(String(32), default=None)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    dingtalk_id: Mapped[str | None] = mapped_column(String(64), default=None)
    wecom_id: Mapped[str | None] = mapped_column(String(64), default=None)
    feishu_id: Mapped[str | None] = mapped_column(String(64), default=None)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class WebSession(Base):
    """A browser signed in to the pages: its cookie holds a random secret, this row only the secret's hash."""

    __tablename__ = "web_sessions"

    # A random public handle (GET /me/sessions shows it); unlike the secret it proves nothing.
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    client_address: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(200), default=None)


class SignInFailure(Base):
    """One failed sign-in, counted against one scope: the name typed, or the client address."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failure_key", "scope", "key", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(index=True)


class ProcessInstance(Base):
    __tablename__ = "process_instances"
    # active_key is the business key while the instance is active, NULL after: unique among active ones.
    __table_args__ = (UniqueConstraint("process_key", "active_key", name="uq_instance_active_business_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    process_key: Mapped[str] = mapped_column(String(64), index=True)
    definition_version: Mapped[int] = mapped_column(Integer)
    business_key: Mapped[str] = mapped_column(String(128), index=True)
    active_key: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("process_instances.id"), index=True)
    parent_step: Mapped[str | None] = mapped_column(String(64))
    flow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    started_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class DefinitionVersion(Base):
    """One stored version of a process's definition: the flows.yaml text an instance pinned at its start."""

    __tablename__ = "definition_versions"
    __table_args__ = (
        UniqueConstraint("process_key", "version", name="uq_definition_version"),
        UniqueConstraint("process_key", "sha256", name="uq_definition_text"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    process_key: Mapped[str] = mapped_column(String(64))
    # The number instances record (process_instances.definition_version): 1, 2, 3 … per process.
    version: Mapped[int] = mapped_column(Integer)
    # The process's `version:` in flows.yaml when stored: what flow modules declare they were written for.
    declared_version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)


class HumanTask(Base):
    __tablename__ = "human_tasks"
    # One task per (instance, step, round): a replayed flow finds the row it made before.
    __table_args__ = (
        UniqueConstraint("instance_id", "step_key", "round", "lane", name="uq_task_step_round_lane"),
        Index("ix_task_inbox", "state", "role", "due_at"),
        # Equality on (assignee|escalated_to, state), then due_at: the inbox reads its default sort in index order.
        Index("ix_task_assignee", "assignee", "state", "due_at"),
        Index("ix_task_escalated", "escalated_to", "state", "due_at"),
        # The sweeper's three SLA scans and the KPI range scan.
        Index("ix_task_remind", "state", "remind_at"),
        Index("ix_task_overdue", "state", "due_at"),
        Index("ix_task_escalate", "state", "escalate_at"),
        Index("ix_task_completed_at", "completed_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instances.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    round: Mapped[int] = mapped_column(Integer, default=1)
    # A parallel step has one task per lane (its role); other steps have the empty lane.
    lane: Mapped[str] = mapped_column(String(32), default="")
    role: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(64))
    # Users who may not complete this task (four-eyes: whoever did the work it approves).
    excluded_users: Mapped[list[str]] = mapped_column(JSON, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    completed_by: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Bumped when a run resumes while this task is still open, so it can suspend again.
    suspend_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    # SLA: when to remind (a fraction of the due time) and to escalate, and when each happened.
    remind_at: Mapped[datetime | None] = mapped_column(default=None)
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    overdue_at: Mapped[datetime | None] = mapped_column(default=None)
    escalate_at: Mapped[datetime | None] = mapped_column(default=None)
    escalated_at: Mapped[datetime | None] = mapped_column(default=None)
    # The role (or "managers") that may also claim the task once it escalated.
    escalated_to: Mapped[str | None] = mapped_column(String(32), default=None)
    # Breach forecast, refreshed by the sweeper from the role's queue depth and recent throughput.
    expected_finish_at: Mapped[datetime | None] = mapped_column(default=None)
    at_risk: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


# The inbox's priority and at_risk sorts read in index order (engine/inbox_ordered.py): equality on
# (state, role), or on state for managers, then the lead descending and the due time ascending.
Index("ix_task_inbox_priority", HumanTask.state, HumanTask.role, HumanTask.priority.desc(), HumanTask.due_at)
Index("ix_task_all_priority", HumanTask.state, HumanTask.priority.desc(), HumanTask.due_at)
Index("ix_task_inbox_risk", HumanTask.state, HumanTask.role, HumanTask.at_risk.desc(), HumanTask.due_at)
Index("ix_task_all_risk", HumanTask.state, HumanTask.at_risk.desc(), HumanTask.due_at)
Index("ix_task_assignee_priority", HumanTask.assignee, HumanTask.state, HumanTask.priority.desc(), HumanTask.due_at)
Index("ix_task_assignee_risk", HumanTask.assignee, HumanTask.state, HumanTask.at_risk.desc(), HumanTask.due_at)
# PostgreSQL also keeps extended statistics st_task_state_risk (mcv on state, at_risk; migration 0013): only
# active tasks are ever at risk, and without them the planner misread the at_risk pages. Not metadata: no model.


class TaskComment(Base):
    __tablename__ = "task_comments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("human_tasks.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Append-only history: one row per state change, written in the change's transaction."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    type: Mapped[str] = mapped_column(String(48))
    actor: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str | None] = mapped_column(String(36), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OutboxMessage(Base):
    """A message to Prefect (start, resume, cancel) delivered after commit, retried until done."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "available_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    instance_id: Mapped[str | None] = mapped_column(String(36))
    task_id: Mapped[str | None] = mapped_column(String(36))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set when delivery was given up after the last allowed attempt (webhooks and channel messages).
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    # A channel message folded into another one's digest was delivered with it: that message's id.
    delivered_with: Mapped[int | None] = mapped_column(BigId, default=None)


class IdempotentResponse(Base):
    """The first answer to a request carrying an Idempotency-Key, replayed on a repeat."""

    __tablename__ = "idempotent_responses"
    __table_args__ = (UniqueConstraint("user_name", "key", name="uq_idempotency_user_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    request_path: Mapped[str] = mapped_column(String(256))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StepResult(Base):
    """The stored result of an auto step with a side effect: it runs once per key."""

    __tablename__ = "step_results"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instances.id"), index=True)
    step_key: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Refund(Base):
    """A refund issued through the payment provider; one per return instance."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instances.id"), unique=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    deduction: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column()
    due_by: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderRating(Base):
    """Ratings as the marketplace reports them (the marketplace itself is outside ecomflow)."""

    __tablename__ = "order_ratings"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rating: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlowRunLease(Base):
    """A flow run a worker is executing now; an expired lease means that worker died mid-run."""

    __tablename__ = "flow_run_leases"

    flow_run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(64), index=True)
    leased_until: Mapped[datetime] = mapped_column(index=True)
    # How many times a worker took this run without it reaching a wait or an end: a crash loop guard.
    takes: Mapped[int] = mapped_column(Integer, default=1)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerPresence(Base):
    """A worker process that is alive: it renews seen_until while it runs, so the others know how many share runs."""

    __tablename__ = "worker_presence"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_until: Mapped[datetime] = mapped_column(index=True)


class Timer(Base):
    """A business wait (a go-live slot, an event's end): the sweeper resumes the run at fire_at."""

    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("instance_id", "step_key", "round", name="uq_timer_step_round"),
        Index("ix_timer_due", "fired_at", "fire_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instances.id"), index=True)
    step_key: Mapped[str] = mapped_column(String(64))
    round: Mapped[int] = mapped_column(Integer, default=1)
    fire_at: Mapped[datetime] = mapped_column()
    fired_at: Mapped[datetime | None] = mapped_column(default=None)
    # Bumped when a run resumes before the timer fired, so it can suspend again.
    suspend_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Location(Base):
    """Where stock is kept: the online warehouse and each store (one stock for both channels)."""

    __tablename__ = "locations"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # warehouse | store
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Product(Base):
    """A product (SPU): what a shopper sees as one 宝贝; its variants carry the prices."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200), index=True)
    category: Mapped[str] = mapped_column(String(64))
    brand: Mapped[str] = mapped_column(String(64))
    # Sold only online (产品差异化): outside the channel price rule.
    online_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Variant(Base):
    """A variant (SKU) of a product: its attributes, barcode and the one list price of both channels."""

    __tablename__ = "variants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"colour": ..., "size": ...}
    barcode: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    list_price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StockMovement(Base):
    """One change of stock; the ledger. Each (kind, business_key) happens once, whatever replays happen."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        UniqueConstraint("kind", "business_key", name="uq_stock_movement_once"),
        Index("ix_stock_movement_sku", "sku", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    sku: Mapped[str] = mapped_column(ForeignKey("variants.code"))
    location: Mapped[str] = mapped_column(ForeignKey("locations.code"))
    # Always positive; the kind says which way it moves on-hand and reserved (an adjust may be negative).
    quantity: Mapped[int] = mapped_column(Integer)
    business_key: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    instance_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StockBalance(Base):
    """On-hand and reserved stock of a SKU at a location: the movements summed, kept in their transaction."""

    __tablename__ = "stock_balances"
    __table_args__ = (CheckConstraint("reserved >= 0 AND on_hand >= reserved", name="ck_stock_balance_never_negative"),)

    sku: Mapped[str] = mapped_column(ForeignKey("variants.code"), primary_key=True)
    location: Mapped[str] = mapped_column(ForeignKey("locations.code"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PriceDeviation(Base):
    """An online price below a SKU's list price that the owner approved, with the reason, in a campaign or event."""

    __tablename__ = "price_deviations"
    __table_args__ = (UniqueConstraint("instance_id", "sku", name="uq_price_deviation_once"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(ForeignKey("variants.code"), index=True)
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    list_price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    reason: Mapped[str] = mapped_column(Text)
    approved_by: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str] = mapped_column(String(36))
    process_key: Mapped[str] = mapped_column(String(64))
    approved_at: Mapped[datetime] = mapped_column(default=utcnow)


class VariantListing(Base):
    """A variant as it is live on the shop now: the online price and stock its last published listing gave it."""

    __tablename__ = "variant_listings"

    sku: Mapped[str] = mapped_column(ForeignKey("variants.code"), primary_key=True)
    online_price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    listed_stock: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(255))
    shipping_template: Mapped[str] = mapped_column(String(100))
    dispatch_within_hours: Mapped[int] = mapped_column(Integer)
    instance_id: Mapped[str] = mapped_column(String(36))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogEntry(Base):
    """What went live on the shop: listings, pages, modules, images."""

    __tablename__ = "catalog_entries"
    __table_args__ = (UniqueConstraint("instance_id", "kind", "ref", name="uq_catalog_publish_once"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    ref: Mapped[str] = mapped_column(String(128), index=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instances.id"))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    channel_ref: Mapped[str] = mapped_column(String(255))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class CopyEntry(Base):
    """A reviewed customer-care text in the copy library."""

    __tablename__ = "copy_library"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instances.id"), unique=True)
    scenario: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class Campaign(Base):
    """An approved themed campaign."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instances.id"), unique=True)
    theme: Mapped[str] = mapped_column(String(200))
    starts_on: Mapped[str] = mapped_column(String(10))
    ends_on: Mapped[str] = mapped_column(String(10))
    budget: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KpiTarget(Base):
    """A revenue target from a quarterly plan's decomposition, per month or department."""

    __tablename__ = "kpi_targets"
    __table_args__ = (UniqueConstraint("plan_instance_id", "scope", "key", name="uq_kpi_target"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    plan_instance_id: Mapped[str] = mapped_column(ForeignKey("process_instances.id"), index=True)
    quarter: Mapped[str] = mapped_column(String(7))
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(32))
    revenue: Mapped[Decimal] = mapped_column(Numeric(14, 2))


class ChannelSend(Base):
    """One request sent to a rate-limited channel: what its per-minute budget counts."""

    __tablename__ = "channel_sends"
    __table_args__ = (Index("ix_channel_sends_window", "channel", "sent_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class DailyDigestRun(Base):
    """The morning digest of one local day, made once whatever the number of sweepers."""

    __tablename__ = "daily_digest_runs"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    made_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    """An uploaded file: its bytes live in the blob store under their SHA-256, so equal bytes are stored once."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # Read from the content, never from the file name.
    content_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    # Images only: the size as displayed (EXIF rotation applied), and what the image checks need.
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    image_facts: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    has_thumbnail: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    uploaded_by: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AttachmentReference(Base):
    """An instance (through a completed task's output, or its start params) uses an attachment."""

    __tablename__ = "attachment_references"
    __table_args__ = (UniqueConstraint("attachment_id", "instance_id", "task_id", "field", name="uq_attachment_use"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    attachment_id: Mapped[str] = mapped_column(ForeignKey("attachments.id", ondelete="CASCADE"), index=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instances.id"), index=True)
    # Empty for a reference from the instance's start params.
    task_id: Mapped[str] = mapped_column(String(36), default="")
    field: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Creative(Base):
    """An approved creative in the design archive (作品建档): its images, SKUs, campaign and recorded figures."""

    __tablename__ = "creatives"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instances.id"), unique=True)
    process_key: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    skus: Mapped[list[str]] = mapped_column(JSON, default=list)
    attachment_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What the performance feedback recorded: impressions, clicks, click_through_rate, verdict.
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The ad creative it ran as (the 直通车/钻展 创意 report's 创意ID): its clicks and impressions give its CTR.
    ad_creative_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    approved_by: Mapped[str] = mapped_column(String(64))
    approved_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


# The shop platforms' tables live in their own module; imported here so that Base.metadata holds them.
from ecomflow.engine.db import platform_models  # noqa: E402, F401 - needs Base defined above; registers the tables
