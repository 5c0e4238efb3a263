"""The payment gateway of the running app, as a FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from congocart.payments.domain import PaymentGateway


async def get_payment_gateway(request: Request) -> PaymentGateway:
    """The gateway the app's lifespan opened (`app.state.payments`).

    `async def` although it never awaits: a plain `def` dependency would run
    in a worker thread, a hop that costs more than the work.
    """
    gateway: PaymentGateway = request.app.state.payments
    return gateway


Gateway = Annotated[PaymentGateway, Depends(get_payment_gateway)]
