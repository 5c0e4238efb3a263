"""payments.service: charging and voiding through the gateway port, idempotently."""

from __future__ import annotations

import uuid

import pytest

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.core.money import Money
from congocart.payments import service
from congocart.payments.domain import PaymentDeclined, PaymentTimeout


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def key() -> str:
    return f"test-{uuid.uuid4()}"


async def captured(gateway: SandboxGateway, idempotency_key: str) -> tuple[int, int] | None:
    async with gateway._db.acquire() as conn:  # the sandbox's own books
        row = await conn.fetchrow(
            "SELECT amount_minor, refunded_minor FROM sandbox_charges WHERE idempotency_key = $1",
            idempotency_key,
        )
    return None if row is None else (row["amount_minor"], row["refunded_minor"])


async def test_nothing_to_pay_charges_nothing(gateway: SandboxGateway) -> None:
    k = key()

    assert await service.charge_card(gateway, idempotency_key=k, amount=usd("0"), token="x") is None
    assert await captured(gateway, k) is None


async def test_a_charge_is_made_once_per_key(gateway: SandboxGateway) -> None:
    k = key()

    first = await service.charge_card(
        gateway, idempotency_key=k, amount=usd("9.99"), token="tok_visa"
    )
    again = await service.charge_card(
        gateway, idempotency_key=k, amount=usd("9.99"), token="tok_visa"
    )

    assert first == again
    assert first is not None
    assert first.last4 == "4242"
    assert await captured(gateway, k) == (999, 0)


async def test_gateway_failures_reach_the_caller_as_the_port_defines_them(
    gateway: SandboxGateway,
) -> None:
    with pytest.raises(PaymentDeclined):
        await service.charge_card(
            gateway, idempotency_key=key(), amount=usd("1.00"), token="tok_chargeDeclined"
        )
    with pytest.raises(PaymentTimeout):
        await service.charge_card(
            gateway, idempotency_key=key(), amount=usd("1.00"), token="tok_timeout"
        )


async def test_void_charge_gives_back_a_charge_in_full_once_however_often_it_runs(
    gateway: SandboxGateway,
) -> None:
    k = key()
    with pytest.raises(PaymentTimeout):  # charged, but the answer was lost
        await service.charge_card(
            gateway, idempotency_key=k, amount=usd("5.00"), token="tok_timeout"
        )

    first = await service.void_charge(gateway, idempotency_key=k)
    again = await service.void_charge(gateway, idempotency_key=k)

    assert first is not None
    assert again == first
    assert first.amount == usd("5.00")
    assert await captured(gateway, k) == (500, 500)


async def test_void_charge_without_a_charge_does_nothing(gateway: SandboxGateway) -> None:
    k = key()
    with pytest.raises(PaymentDeclined):
        await service.charge_card(
            gateway, idempotency_key=k, amount=usd("5.00"), token="tok_chargeDeclined"
        )

    assert await service.void_charge(gateway, idempotency_key=k) is None
    assert await service.void_charge(gateway, idempotency_key=key()) is None


def test_jobs_get_the_installed_gateway_and_fail_loudly_without_one(
    gateway: SandboxGateway,
) -> None:
    service.install_gateway(None)
    with pytest.raises(service.GatewayNotInstalled):
        service.installed_gateway()
    service.install_gateway(gateway)
    try:
        assert service.installed_gateway() is gateway
    finally:
        service.install_gateway(None)
