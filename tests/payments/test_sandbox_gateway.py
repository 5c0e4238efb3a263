"""The sandbox gateway acts like a card provider: idempotent, durable, outside our transactions."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.core.db import Database, connect_single
from congocart.core.money import Money
from congocart.payments.domain import (
    IdempotencyKeyConflict,
    PaymentDeclined,
    PaymentGateway,
    PaymentNotFound,
    PaymentTimeout,
    PaymentUnavailable,
    RefundRejected,
)


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def key() -> str:
    return f"test-{uuid.uuid4()}"


async def charge_rows(database: Database, idempotency_key: str) -> int:
    async with database.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM sandbox_charges WHERE idempotency_key = $1", idempotency_key
        )
    return count


def test_the_sandbox_implements_the_gateway_port(gateway: SandboxGateway) -> None:
    port: PaymentGateway = gateway
    assert port is gateway


@pytest.mark.parametrize(
    ("token", "brand", "last4"),
    [("tok_visa", "visa", "4242"), ("tok_mastercard", "mastercard", "4444")],
)
async def test_approved_cards_are_charged_and_report_their_last4(
    gateway: SandboxGateway, token: str, brand: str, last4: str
) -> None:
    k = key()
    result = await gateway.charge(idempotency_key=k, amount=usd("48.78"), token=token)
    assert result.amount == usd("48.78")
    assert (result.brand, result.last4) == (brand, last4)
    assert result.payment_ref.startswith("ch_sbx_")
    assert await gateway.find_charge(idempotency_key=k) == result


@pytest.mark.parametrize(
    ("token", "decline_code"),
    [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
        ("tok_somethingElse", "invalid_token"),
    ],
)
async def test_declining_tokens_raise_declined_and_charge_nothing(
    gateway: SandboxGateway, token: str, decline_code: str
) -> None:
    k = key()
    with pytest.raises(PaymentDeclined) as raised:
        await gateway.charge(idempotency_key=k, amount=usd("10.00"), token=token)
    assert raised.value.decline_code == decline_code
    assert await gateway.find_charge(idempotency_key=k) is None


async def test_a_processing_error_is_unavailable_and_charges_nothing(
    gateway: SandboxGateway,
) -> None:
    k = key()
    with pytest.raises(PaymentUnavailable):
        await gateway.charge(idempotency_key=k, amount=usd("10.00"), token="tok_processingError")
    assert await gateway.find_charge(idempotency_key=k) is None


async def test_the_same_key_returns_the_first_charge_without_charging_again(
    gateway: SandboxGateway, sandbox_database: Database
) -> None:
    k = key()
    first = await gateway.charge(idempotency_key=k, amount=usd("10.00"), token="tok_visa")
    second = await gateway.charge(idempotency_key=k, amount=usd("10.00"), token="tok_visa")
    assert second == first
    assert await charge_rows(sandbox_database, k) == 1


async def test_the_same_key_repeats_a_decline(gateway: SandboxGateway) -> None:
    k = key()
    for _ in range(2):
        with pytest.raises(PaymentDeclined):
            await gateway.charge(idempotency_key=k, amount=usd("1.00"), token="tok_chargeDeclined")


async def test_concurrent_charges_with_one_key_make_exactly_one_charge(
    gateway: SandboxGateway, sandbox_database: Database
) -> None:
    k = key()
    results = await asyncio.gather(
        *(
            gateway.charge(idempotency_key=k, amount=usd("5.00"), token="tok_visa")
            for _ in range(12)
        )
    )
    assert len({r.payment_ref for r in results}) == 1
    assert await charge_rows(sandbox_database, k) == 1


async def test_reusing_a_key_for_a_different_charge_is_a_conflict(gateway: SandboxGateway) -> None:
    k = key()
    await gateway.charge(idempotency_key=k, amount=usd("5.00"), token="tok_visa")
    with pytest.raises(IdempotencyKeyConflict):
        await gateway.charge(idempotency_key=k, amount=usd("6.00"), token="tok_visa")
    with pytest.raises(IdempotencyKeyConflict):
        await gateway.charge(idempotency_key=k, amount=usd("5.00"), token="tok_mastercard")


@pytest.mark.parametrize("amount", [usd("0"), usd("-1.00"), Money(Decimal("0.001"), "USD")])
async def test_a_charge_must_be_positive_whole_minor_units(
    gateway: SandboxGateway, amount: Money
) -> None:
    with pytest.raises(ValueError, match="positive"):
        await gateway.charge(idempotency_key=key(), amount=amount, token="tok_visa")


async def test_charges_are_seen_by_another_process_with_its_own_pool(
    gateway: SandboxGateway, sandbox_dsn: str
) -> None:
    k = key()
    charged = await gateway.charge(idempotency_key=k, amount=usd("7.00"), token="tok_visa")
    other_process = Database(sandbox_dsn, min_size=1, max_size=2)
    await other_process.connect()
    try:
        other = SandboxGateway(other_process)
        assert await other.find_charge(idempotency_key=k) == charged
        again = await other.charge(idempotency_key=k, amount=usd("7.00"), token="tok_visa")
        assert again == charged
    finally:
        await other_process.close()


async def test_a_charge_outlives_the_rollback_of_the_callers_transaction(
    gateway: SandboxGateway, sandbox_dsn: str
) -> None:
    k = key()
    caller = await connect_single(sandbox_dsn)
    try:
        tx = caller.transaction()
        await tx.start()
        await gateway.charge(idempotency_key=k, amount=usd("3.00"), token="tok_visa")
        await tx.rollback()
    finally:
        await caller.close()
    assert await gateway.find_charge(idempotency_key=k) is not None


async def test_a_lost_answer_is_a_timeout_but_the_charge_exists_and_can_be_voided(
    gateway: SandboxGateway,
) -> None:
    k = key()
    with pytest.raises(PaymentTimeout):
        await gateway.charge(idempotency_key=k, amount=usd("20.00"), token="tok_timeout")
    orphan = await gateway.find_charge(idempotency_key=k)
    assert orphan is not None
    assert orphan.amount == usd("20.00")
    voided = await gateway.void(payment_ref=orphan.payment_ref, idempotency_key=f"{k}:void")
    assert voided.amount == usd("20.00")


async def test_partial_refunds_accumulate_up_to_the_charge(gateway: SandboxGateway) -> None:
    charge = await gateway.charge(idempotency_key=key(), amount=usd("10.00"), token="tok_visa")
    first = await gateway.refund(
        payment_ref=charge.payment_ref, amount=usd("4.00"), idempotency_key=key()
    )
    assert first.amount == usd("4.00")
    assert first.payment_ref == charge.payment_ref
    with pytest.raises(RefundRejected, match=r"6\.00"):
        await gateway.refund(
            payment_ref=charge.payment_ref, amount=usd("6.01"), idempotency_key=key()
        )
    rest = await gateway.refund(
        payment_ref=charge.payment_ref, amount=usd("6.00"), idempotency_key=key()
    )
    assert rest.amount == usd("6.00")


async def test_a_refund_repeated_with_its_key_refunds_once(gateway: SandboxGateway) -> None:
    charge = await gateway.charge(idempotency_key=key(), amount=usd("10.00"), token="tok_visa")
    k = key()
    results = await asyncio.gather(
        *(
            gateway.refund(payment_ref=charge.payment_ref, amount=usd("8.00"), idempotency_key=k)
            for _ in range(5)
        )
    )
    assert len({r.ref for r in results}) == 1
    # Only 2.00 is left: a second 8.00 refund under a new key is refused.
    with pytest.raises(RefundRejected):
        await gateway.refund(
            payment_ref=charge.payment_ref, amount=usd("8.00"), idempotency_key=key()
        )


async def test_a_refund_key_reused_for_another_amount_is_a_conflict(
    gateway: SandboxGateway,
) -> None:
    charge = await gateway.charge(idempotency_key=key(), amount=usd("10.00"), token="tok_visa")
    k = key()
    await gateway.refund(payment_ref=charge.payment_ref, amount=usd("1.00"), idempotency_key=k)
    with pytest.raises(IdempotencyKeyConflict):
        await gateway.refund(payment_ref=charge.payment_ref, amount=usd("2.00"), idempotency_key=k)


async def test_void_releases_what_is_left_and_is_safe_to_repeat(gateway: SandboxGateway) -> None:
    charge = await gateway.charge(idempotency_key=key(), amount=usd("10.00"), token="tok_visa")
    await gateway.refund(payment_ref=charge.payment_ref, amount=usd("3.00"), idempotency_key=key())
    k = key()
    voided = await gateway.void(payment_ref=charge.payment_ref, idempotency_key=k)
    assert voided.amount == usd("7.00")
    assert await gateway.void(payment_ref=charge.payment_ref, idempotency_key=k) == voided
    again = await gateway.void(payment_ref=charge.payment_ref, idempotency_key=key())
    assert again.amount.is_zero()
    with pytest.raises(RefundRejected):
        await gateway.refund(
            payment_ref=charge.payment_ref, amount=usd("0.01"), idempotency_key=key()
        )


async def test_reversing_an_unknown_or_declined_charge_is_not_found(
    gateway: SandboxGateway, sandbox_database: Database
) -> None:
    with pytest.raises(PaymentNotFound):
        await gateway.void(payment_ref="ch_sbx_nope", idempotency_key=key())
    k = key()
    with pytest.raises(PaymentDeclined):
        await gateway.charge(idempotency_key=k, amount=usd("1.00"), token="tok_chargeDeclined")
    async with sandbox_database.acquire() as conn:
        declined_ref = await conn.fetchval(
            "SELECT id FROM sandbox_charges WHERE idempotency_key = $1", k
        )
    with pytest.raises(PaymentNotFound):
        await gateway.refund(payment_ref=declined_ref, amount=usd("1.00"), idempotency_key=key())


async def test_a_provider_that_does_not_answer_in_time_is_a_timeout(
    sandbox_database: Database, gateway: SandboxGateway
) -> None:
    charge = await gateway.charge(idempotency_key=key(), amount=usd("10.00"), token="tok_visa")
    slow = SandboxGateway(sandbox_database, timeout_seconds=0.2)
    async with sandbox_database.transaction() as blocker:
        await blocker.execute(
            "SELECT 1 FROM sandbox_charges WHERE id = $1 FOR UPDATE", charge.payment_ref
        )
        with pytest.raises(PaymentTimeout):
            await slow.refund(
                payment_ref=charge.payment_ref, amount=usd("1.00"), idempotency_key=key()
            )


async def test_an_unreachable_provider_is_unavailable() -> None:
    unreachable = Database("postgresql://postgres@127.0.0.1:1/none", min_size=0, max_size=1)
    await unreachable.connect()
    try:
        gateway = SandboxGateway(unreachable)
        with pytest.raises(PaymentUnavailable):
            await gateway.charge(idempotency_key=key(), amount=usd("1.00"), token="tok_visa")
    finally:
        await unreachable.close()
