"""Payments: taking and giving back money through the configured `PaymentGateway`.

No SQL here: the provider keeps its own books, and what an order paid is
recorded by the order itself (`orders.service.create_paid_order`). These use
cases only speak to the gateway, and are never called while the caller holds
a database transaction with row locks (a slow provider would hold the locks).

Every call carries an idempotency key, so a retry, a second worker or a
sweeper running the same call again never moves money twice.
"""

from __future__ import annotations

import asyncio

from congocart.core.money import Money
from congocart.payments.domain import (
    PaymentGateway,
    PaymentResult,
    PaymentTimeout,
    Reversal,
)

# An upper bound on one provider call, whatever the adapter's own timeout is.
# Checkout reservations outlive it by far (`checkout.service.RESERVATION_TTL`).
GATEWAY_CALL_TIMEOUT_SECONDS = 20.0

_installed: PaymentGateway | None = None


class GatewayNotInstalled(RuntimeError):
    """Background jobs asked for the gateway before the process set one up."""


def install_gateway(gateway: PaymentGateway | None) -> None:
    """Make `gateway` the one background jobs use in this process (None removes it).

    The app's lifespan and `congocart worker` install the gateway they open;
    request handlers get theirs from `app.state.payments` instead.
    """
    global _installed
    _installed = gateway


def installed_gateway() -> PaymentGateway:
    if _installed is None:
        raise GatewayNotInstalled("no payment gateway is installed in this process")
    return _installed


async def charge_card(
    gateway: PaymentGateway, *, idempotency_key: str, amount: Money, token: str
) -> PaymentResult | None:
    """Authorise and capture `amount`; None when there is nothing to charge.

    Raises the gateway's `PaymentDeclined` / `PaymentUnavailable` (nothing
    charged) or `PaymentTimeout` (the outcome is unknown: settle it with
    `void_charge` under the same key).
    """
    if amount.is_zero():
        return None
    try:
        async with asyncio.timeout(GATEWAY_CALL_TIMEOUT_SECONDS):
            return await gateway.charge(idempotency_key=idempotency_key, amount=amount, token=token)
    except TimeoutError as exc:
        raise PaymentTimeout("the payment gateway did not answer in time") from exc


async def void_charge(gateway: PaymentGateway, *, idempotency_key: str) -> Reversal | None:
    """Give back in full whatever charge was made under `idempotency_key`, if any.

    Safe to repeat, by any number of callers: the void itself carries a key
    derived from the charge's, so the provider reverses the charge once.
    """
    async with asyncio.timeout(GATEWAY_CALL_TIMEOUT_SECONDS):
        charge = await gateway.find_charge(idempotency_key=idempotency_key)
        if charge is None:
            return None
        return await gateway.void(
            payment_ref=charge.payment_ref, idempotency_key=f"void:{idempotency_key}"
        )
