"""Who may reach a cart, and the request headers and query options every cart route shares.

    async def handler(owner: CartAccess, ...) -> ...

`CartAccess` is the caller as a cart sees it: the authenticated user (None
without an Authorization header; a bad token is 401) and the guest cart token
from `X-Cart-Token`. It decides nothing by itself: the cart services compare it
with the cart (`Cart.is_owned_by`) and answer 404 `cart_not_found` to anyone
who is not the owner, so a cart's existence never leaks. Checkout uses it too.
"""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Query, Request

from congocart.carts import service
from congocart.carts.domain import CartOwner
from congocart.carts.errors import CartItemNotFound, CartNotFound, IfMatchInvalid
from congocart.carts.service import Pricing
from congocart.config import Settings
from congocart.core.db import Conn
from congocart.identity.dependencies import BearerToken, caller

__all__ = [
    "CartAccess",
    "CartId",
    "CartOwner",
    "CartPricing",
    "ExpectedVersion",
    "ItemId",
    "cart_owner",
    "shop_settings",
]

# `3`, `"3"` or `W/"3"`: the cart's version, as the ETag header shows it.
_IF_MATCH = re.compile(r'^(?:W/)?"?([1-9][0-9]{0,9})"?$')


async def cart_owner(
    request: Request,
    conn: Conn,
    token: BearerToken,
    x_cart_token: Annotated[
        str | None,
        Header(
            description="A guest cart's token, as returned once when the cart was created.",
            max_length=512,
        ),
    ] = None,
) -> CartOwner:
    # The caller resolved here, not through `OptionalUser`: one dependency
    # fewer on every cart and checkout request.
    return CartOwner(user=await caller(request, conn, token), cart_token=x_cart_token)


CartAccess = Annotated[CartOwner, Depends(cart_owner)]


def shop_settings(request: Request) -> Settings:
    """The shop's settings, as a plain call (not worth a dependency's cost)."""
    settings: Settings = request.app.state.settings
    return settings


# The dependencies below are `async def` although they never await: FastAPI runs
# a plain `def` dependency in a worker thread, a hop that costs more than the work.


async def expected_version(
    if_match: Annotated[
        str | None,
        Header(
            description=(
                "Make the change only if the cart is still at this version "
                '(`3` or `"3"`, as in the ETag); otherwise 412 `version_mismatch`.'
            ),
            max_length=64,
        ),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    match = _IF_MATCH.match(if_match.strip())
    if match is None:
        raise IfMatchInvalid()
    return int(match.group(1))


ExpectedVersion = Annotated[int | None, Depends(expected_version)]


async def cart_pricing(
    request: Request,
    country: Annotated[
        str | None,
        Query(
            max_length=8,
            description="Destination country (ISO 3166-1 alpha-2): shows its shipping and tax.",
        ),
    ] = None,
    shipping_method: Annotated[
        str | None,
        Query(max_length=64, description="Shipping method code (default: `standard`)."),
    ] = None,
) -> Pricing:
    settings = shop_settings(request)
    destination = service.resolve_destination(
        country=country, shipping_method=shipping_method, currency=settings.currency
    )
    return Pricing(destination=destination, tax_rates=settings.tax_rates)


CartPricing = Annotated[Pricing, Depends(cart_pricing)]


def _uuid_or(value: str, error: type[CartNotFound] | type[CartItemNotFound]) -> UUID:
    # A malformed id names no cart: 404, exactly like an unknown one.
    try:
        return UUID(value)
    except ValueError as exc:
        raise error() from exc


async def cart_id(cart_id: str) -> UUID:
    return _uuid_or(cart_id, CartNotFound)


async def item_id(item_id: str) -> UUID:
    return _uuid_or(item_id, CartItemNotFound)


CartId = Annotated[UUID, Depends(cart_id)]
ItemId = Annotated[UUID, Depends(item_id)]
