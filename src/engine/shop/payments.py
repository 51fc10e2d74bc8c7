"""Refunds: recorded once per return, paid through a provider (the real one is outside ecomflow)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import Refund
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR


class PaymentProvider(Protocol):
    """Pays refunds; must treat a repeated idempotency key as the same refund."""

    def refund(self, *, idempotency_key: str, order_id: str, amount: Decimal, currency: str) -> str:
        """Refund the amount and return the provider's reference."""
        ...


class LedgerPaymentProvider:
    """The embedded default: the refund is booked in ecomflow's ledger for finance to pay out."""

    def refund(self, *, idempotency_key: str, order_id: str, amount: Decimal, currency: str) -> str:
        return f"ledger:{idempotency_key}"


def find_refund(session: Session, *, instance_id: str) -> Refund | None:
    """Return the refund of a return instance, if any."""
    return session.scalar(select(Refund).where(Refund.instance_id == instance_id))


def issue_refund(
    session: Session,
    *,
    provider: PaymentProvider,
    instance_id: str,
    order_id: str,
    amount: Decimal,
    deduction: Decimal,
    currency: str,
    received_at: datetime,
    pay_within: timedelta,
) -> Refund:
    """Refund a return exactly once: a repeat call returns the refund already made."""
    existing = find_refund(session, instance_id=instance_id)
    if existing is not None:
        return existing
    payable = max(amount - deduction, Decimal("0"))
    reference = provider.refund(
        idempotency_key=f"refund-{instance_id}", order_id=order_id, amount=payable, currency=currency
    )
    refund = Refund(
        instance_id=instance_id,
        order_id=order_id,
        amount=payable,
        deduction=deduction,
        currency=currency,
        provider_ref=reference,
        received_at=received_at,
        due_by=received_at + pay_within,
    )
    if not insert_unless_exists(session, refund):
        return find_refund(session, instance_id=instance_id)
    record_event(
        session,
        type="refund.issued",
        actor=SYSTEM_ACTOR,
        instance_id=instance_id,
        data={"order_id": order_id, "amount": str(payable), "deduction": str(deduction), "reference": reference},
    )
    return refund
