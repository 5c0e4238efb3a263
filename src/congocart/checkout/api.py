"""Checkout route: a cart becomes a paid order."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from congocart.carts.dependencies import CartAccess, CartId
from congocart.checkout import service
from congocart.checkout.schemas import CheckoutCreate
from congocart.config import Settings
from congocart.core import idempotency
from congocart.core.db import Conn
from congocart.core.errors import ValidationFailed, problem_response
from congocart.orders.schemas import OrderRead, order_to_response
from congocart.payments.dependencies import payment_gateway

router = APIRouter(tags=["checkout"])

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description=(
            "Required: 1-255 printable characters, unique per checkout. Repeating a "
            "request with the same key and body returns the first answer."
        ),
    ),
]


@router.post(
    "/carts/{cart_id}/checkout",
    status_code=201,
    response_model=OrderRead,
    responses={
        400: {"description": "`Idempotency-Key` missing or malformed."},
        402: {"description": "`payment_declined`: nothing was charged, nothing changed."},
        404: {"description": "No such cart, or not yours."},
        409: {
            "description": (
                "`out_of_stock`, `cart_empty`, `cart_closed`, `coupon_unavailable`, "
                "`idempotency_key_in_flight` (with `Retry-After`)."
            )
        },
        422: {"description": "Invalid body, or `idempotency_key_reused` with another body."},
        502: {"description": "`payment_unavailable`: nothing charged, nothing reserved."},
        504: {"description": "`payment_timeout`: nothing reserved; any charge is reversed."},
    },
)
async def check_out(
    request: Request,
    cart_id: CartId,
    body: CheckoutCreate,
    conn: Conn,
    owner: CartAccess,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Place the order for this cart and pay for it.

    Reserves the stock, charges the card, then confirms the order (cart closed,
    coupon redeemed) or gives everything back: a declined or failed payment
    leaves stock, cart and coupon exactly as they were. Never oversells.

    The same `Idempotency-Key` with the same body answers the same (the same
    order, or the same error) for at least 24 hours; while the first call is
    still running, 409 `idempotency_key_in_flight`. After a 502 or 504 the same
    key may be retried. Guests must give `email`; a signed-in customer's
    defaults to their account's.
    """
    key = idempotency.parse_key(idempotency_key)
    user = owner.user
    email = body.email or (user.email if user is not None else None)
    if email is None:
        raise ValidationFailed(
            "A guest checkout needs an email address for the receipt.",
            errors=[{"field": "email", "message": "required for guest checkout"}],
        )
    settings: Settings = request.app.state.settings
    result = await service.check_out(
        conn,
        gateway=payment_gateway(request),
        call=service.IdempotentCall(
            scope=service.idempotency_scope(
                cart_id=cart_id, user_id=None if user is None else user.id
            ),
            key=key,
            request_hash=idempotency.request_hash(
                method=request.method, path=request.url.path, body=body.model_dump(mode="json")
            ),
        ),
        request=service.CheckoutRequest(
            cart_id=cart_id,
            owner=owner,
            email=email,
            shipping_address=body.shipping_address.to_domain(),
            shipping_method=body.shipping_method,
            payment_token=body.payment.token,
        ),
        render_order=order_to_response,
        tax_rates=settings.tax_rates,
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    if result.status >= 400:
        stored: dict[str, Any] = result.body
        return problem_response(
            request,
            status=result.status,
            code=stored["code"],
            detail=stored["detail"],
            title=stored.get("title"),
            errors=stored.get("errors"),
            headers=headers,
        )
    return Response(
        content=orjson.dumps(result.body),
        status_code=result.status,
        media_type="application/json",
        headers=headers,
    )
