"""The payment gateway of the running app."""

from __future__ import annotations

from fastapi import Request

from congocart.payments.domain import PaymentGateway


def payment_gateway(request: Request) -> PaymentGateway:
    """The gateway the app's lifespan opened (`app.state.payments`).

    A plain function the routes call, not a dependency: FastAPI spends more
    resolving a dependency than this takes.
    """
    gateway: PaymentGateway = request.app.state.payments
    return gateway
