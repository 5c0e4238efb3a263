"""The built-in sandbox payment gateway: a stand-in for a card provider.

It behaves like a real provider where it matters to the caller: decisions are
made per idempotency key and remembered (same key → same answer, at most one
charge), refunds can never exceed what was captured, and it keeps its own
records in `sandbox_charges` / `sandbox_refunds` through its own connections,
so it survives restarts, every API process sees the same charges, and it is
never part of the caller's transaction (a rolled-back checkout does not
un-charge a card; that is what `void` is for).

Test tokens (api-contract.md, "Checkout"):
- `tok_visa` (last4 4242), `tok_mastercard` (last4 4444): approved.
- `tok_chargeDeclined`, `tok_insufficientFunds`: declined, nothing charged.
- `tok_processingError`: the provider fails, nothing charged.
- `tok_timeout` (sandbox only): the card IS charged, but the answer is lost, so
  the caller sees `PaymentTimeout` — the case the reservation sweeper heals.
Any other token is declined as `invalid_token`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import asyncpg

from congocart.core.db import Connection, Database
from congocart.core.money import Money
from congocart.payments.domain import (
    IdempotencyKeyConflict,
    PaymentDeclined,
    PaymentNotFound,
    PaymentResult,
    PaymentTimeout,
    PaymentUnavailable,
    RefundRejected,
    Reversal,
)

Outcome = Literal["succeeded", "declined", "failed"]


@dataclass(frozen=True, slots=True)
class _Card:
    outcome: Outcome
    brand: str | None = None
    last4: str | None = None
    decline_code: str | None = None
    answer_lost: bool = False


TEST_CARDS: dict[str, _Card] = {
    "tok_visa": _Card("succeeded", brand="visa", last4="4242"),
    "tok_mastercard": _Card("succeeded", brand="mastercard", last4="4444"),
    "tok_chargeDeclined": _Card("declined", decline_code="card_declined"),
    "tok_insufficientFunds": _Card("declined", decline_code="insufficient_funds"),
    "tok_processingError": _Card("failed", decline_code="processing_error"),
    "tok_timeout": _Card("succeeded", brand="visa", last4="4242", answer_lost=True),
}
_UNKNOWN_CARD = _Card("declined", decline_code="invalid_token")
_DECLINE_MESSAGES = {
    "card_declined": "The card was declined.",
    "insufficient_funds": "The card has insufficient funds.",
    "invalid_token": "The payment token is not valid.",
}


class SandboxGateway:
    """`PaymentGateway` backed by the sandbox tables, on a pool of its own."""

    name = "sandbox"

    def __init__(self, database: Database, *, timeout_seconds: float = 10.0) -> None:
        self._db = database
        self._timeout = timeout_seconds

    async def charge(self, *, idempotency_key: str, amount: Money, token: str) -> PaymentResult:
        if amount.amount <= 0 or not amount.is_exact():
            raise ValueError(f"a charge must be a positive whole number of minor units: {amount}")
        card = TEST_CARDS.get(token, _UNKNOWN_CARD)
        async with self._call(), self._db.acquire() as conn:
            # The insert is the single decision point: a concurrent call with the
            # same key waits on the unique index, then finds the first one's row.
            row = await conn.fetchrow(
                """
                    INSERT INTO sandbox_charges
                        (id, idempotency_key, token, amount_minor, currency,
                         outcome, decline_code, brand, last4)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                    ON CONFLICT (idempotency_key) DO NOTHING
                    RETURNING *
                    """,
                _new_id("ch"),
                idempotency_key,
                token,
                amount.to_minor(),
                amount.currency,
                card.outcome,
                card.decline_code,
                card.brand,
                card.last4,
            )
            first_answer = row is not None
            if row is None:
                row = await conn.fetchrow(
                    "SELECT * FROM sandbox_charges WHERE idempotency_key = $1",
                    idempotency_key,
                )
                assert row is not None
        if (row["token"], row["amount_minor"], row["currency"]) != (
            token,
            amount.to_minor(),
            amount.currency,
        ):
            raise IdempotencyKeyConflict(
                f"idempotency key {idempotency_key!r} was used for a different charge"
            )
        if first_answer and card.answer_lost:
            raise PaymentTimeout("the sandbox charged the card but the answer was lost")
        return _charge_result(row)

    async def find_charge(self, *, idempotency_key: str) -> PaymentResult | None:
        async with self._call(), self._db.acquire() as conn:
            row = await conn.fetchrow(
                """
                SELECT * FROM sandbox_charges
                WHERE idempotency_key = $1 AND outcome = 'succeeded'
                """,
                idempotency_key,
            )
        return None if row is None else _charge_result(row)

    async def refund(self, *, payment_ref: str, amount: Money, idempotency_key: str) -> Reversal:
        if amount.amount <= 0 or not amount.is_exact():
            raise ValueError(f"a refund must be a positive whole number of minor units: {amount}")
        return await self._reverse(
            kind="refund", payment_ref=payment_ref, amount=amount, idempotency_key=idempotency_key
        )

    async def void(self, *, payment_ref: str, idempotency_key: str) -> Reversal:
        return await self._reverse(
            kind="void", payment_ref=payment_ref, amount=None, idempotency_key=idempotency_key
        )

    async def _reverse(
        self,
        *,
        kind: Literal["refund", "void"],
        payment_ref: str,
        amount: Money | None,
        idempotency_key: str,
    ) -> Reversal:
        async with self._call(), self._db.transaction() as conn:
            # Lock the charge first, then look for an earlier answer under this key:
            # two calls with the same key are serialised by the lock, and the second
            # one's lookup (a new statement) sees the first one's committed row.
            charge = await conn.fetchrow(
                """
                SELECT * FROM sandbox_charges
                WHERE id = $1 AND outcome = 'succeeded'
                FOR UPDATE
                """,
                payment_ref,
            )
            if charge is None:
                raise PaymentNotFound(f"no sandbox charge {payment_ref!r}")
            currency: str = charge["currency"]
            earlier = await _reversal_by_key(conn, idempotency_key)
            if earlier is not None:
                same_request = (
                    earlier["charge_id"] == payment_ref
                    and earlier["kind"] == kind
                    and (amount is None or earlier["amount_minor"] == amount.to_minor())
                )
                if not same_request:
                    raise IdempotencyKeyConflict(
                        f"idempotency key {idempotency_key!r} was used for a different reversal"
                    )
                return _reversal(earlier, currency)
            captured = charge["amount_minor"] - charge["refunded_minor"]
            if amount is None:
                minor = captured
            else:
                if amount.currency != currency:
                    raise RefundRejected(f"the charge is in {currency}, not {amount.currency}")
                minor = amount.to_minor()
                if minor > captured:
                    left = Money.from_minor(captured, currency)
                    raise RefundRejected(f"only {left} is left to refund on this charge")
            await conn.execute(
                """
                UPDATE sandbox_charges
                SET refunded_minor = refunded_minor + $2,
                    voided = voided OR $3,
                    updated_at = now()
                WHERE id = $1
                """,
                payment_ref,
                minor,
                kind == "void",
            )
            row = await conn.fetchrow(
                """
                INSERT INTO sandbox_refunds (id, charge_id, idempotency_key, kind, amount_minor)
                VALUES ($1, $2, $3, $4, $5)
                RETURNING *
                """,
                _new_id("re"),
                payment_ref,
                idempotency_key,
                kind,
                minor,
            )
            assert row is not None
            return _reversal(row, currency)

    def _call(self) -> AbstractAsyncContextManager[None]:
        return _provider_call(self._timeout)


@asynccontextmanager
async def _provider_call(timeout_seconds: float) -> AsyncIterator[None]:
    """Turn the sandbox's own failures into what a provider's client would raise."""
    try:
        async with asyncio.timeout(timeout_seconds):
            yield
    except TimeoutError as exc:
        # Like a real provider's timeout: the call may have taken effect.
        raise PaymentTimeout("the sandbox gateway did not answer in time") from exc
    except _UNREACHABLE as exc:
        raise PaymentUnavailable("the sandbox gateway is unreachable") from exc


_UNREACHABLE = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)


async def _reversal_by_key(conn: Connection, idempotency_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM sandbox_refunds WHERE idempotency_key = $1", idempotency_key
    )


def _charge_result(row: asyncpg.Record) -> PaymentResult:
    outcome: Outcome = row["outcome"]
    if outcome == "declined":
        code: str = row["decline_code"]
        raise PaymentDeclined(code, _DECLINE_MESSAGES.get(code, "The card was declined."))
    if outcome == "failed":
        raise PaymentUnavailable("the sandbox provider had a processing error; nothing charged")
    return PaymentResult(
        payment_ref=row["id"],
        amount=Money.from_minor(row["amount_minor"], row["currency"]),
        last4=row["last4"],
        brand=row["brand"],
    )


def _reversal(row: asyncpg.Record, currency: str) -> Reversal:
    return Reversal(
        ref=row["id"],
        payment_ref=row["charge_id"],
        amount=Money.from_minor(row["amount_minor"], currency),
    )


def _new_id(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(12)}"
