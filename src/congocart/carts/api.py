"""Cart routes: guest and user carts, their lines and coupon, merging, shipping methods.

Every cart route answers 404 `cart_not_found` to anyone but the cart's owner
(the user it belongs to, or the holder of a guest cart's `X-Cart-Token`).
Responses carry `ETag: "<version>"`; changes accept `If-Match` with that version.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response

from congocart.carts import service
from congocart.carts.dependencies import (
    CartAccess,
    CartId,
    CartPricing,
    ExpectedVersion,
    ItemId,
    shop_settings,
)
from congocart.carts.domain import CartView
from congocart.carts.schemas import (
    CartCreate,
    CartCreated,
    CartMerge,
    CartRead,
    CouponApply,
    ItemCreate,
    ItemUpdate,
    ShippingMethodRead,
    shipping_method_page,
)
from congocart.core.db import Conn, Tx
from congocart.core.errors import problem_responses
from congocart.core.pagination import SHORT_LIST
from congocart.core.schemas import Page
from congocart.identity.dependencies import CurrentUser, OptionalUser

router = APIRouter(tags=["carts"])


def _read(view: CartView, response: Response) -> CartRead:
    response.headers["ETag"] = f'"{view.version}"'
    return CartRead.of(view)


@router.post("/carts", status_code=201, response_model=CartCreated)
async def create_cart(
    request: Request,
    conn: Conn,
    user: OptionalUser,
    response: Response,
    body: Annotated[CartCreate | None, Body()] = None,
) -> CartCreated:
    """Create an empty cart.

    With a bearer token the cart is the user's (a user may hold several open
    carts). Without one it is a guest cart, and the response's `cart_token` —
    shown this once, only its hash is stored — is what reaches it from now on,
    sent as `X-Cart-Token`. `currency`, when given, must be the shop's
    (422 `currency_not_supported` otherwise).
    """
    # A single INSERT: atomic on its own, so no transaction around it.
    view = await service.create_cart(
        conn,
        user=user,
        currency=None if body is None else body.currency,
        shop_currency=shop_settings(request).currency,
    )
    response.headers["ETag"] = f'"{view.version}"'
    return CartCreated.of(view)


@router.get("/carts/{cart_id}", response_model=CartRead)
async def get_cart(
    conn: Conn, owner: CartAccess, cart_id: CartId, pricing: CartPricing, response: Response
) -> CartRead:
    """The cart, priced at the catalog's current prices.

    Shipping and tax show as zero until a destination is known: `?country=`
    (ISO alpha-2) adds the default shipping method's price and that country's
    tax, `?shipping_method=` picks another method (see `GET /shipping-methods`).
    `total = subtotal - discount + shipping + tax`.
    """
    view = await service.get_cart(conn, cart_id=cart_id, owner=owner, pricing=pricing)
    return _read(view, response)


@router.post(
    "/carts/{cart_id}/items",
    status_code=201,
    response_model=CartRead,
    responses=problem_responses(409, 412),
)
async def add_item(
    conn: Conn,
    owner: CartAccess,
    cart_id: CartId,
    body: ItemCreate,
    expected_version: ExpectedVersion,
    pricing: CartPricing,
    response: Response,
) -> CartRead:
    """Add `quantity` (1-99) of a SKU; a SKU already in the cart has its quantity increased.

    404 `sku_not_found` for an unknown SKU, 409 `sku_unavailable` for one no
    longer sold, 422 `invalid_quantity` when the line would pass 99, 422
    `too_many_lines` for a 101st line, 409 `cart_closed` once the cart is
    checked out, merged or expired. With `If-Match: <version>`, 412
    `version_mismatch` when the cart has changed since that version.
    """
    # Two statements, each atomic on its own: no transaction around them.
    view = await service.add_item(
        conn,
        cart_id=cart_id,
        owner=owner,
        sku=body.sku,
        quantity=body.quantity,
        expected_version=expected_version,
        pricing=pricing,
    )
    return _read(view, response)


@router.patch(
    "/carts/{cart_id}/items/{item_id}",
    response_model=CartRead,
    responses=problem_responses(409, 412),
)
async def update_item(
    tx: Tx,
    owner: CartAccess,
    cart_id: CartId,
    item_id: ItemId,
    body: ItemUpdate,
    expected_version: ExpectedVersion,
    pricing: CartPricing,
    response: Response,
) -> CartRead:
    """Set a line's quantity (0-99; 0 removes the line).

    404 `cart_item_not_found`, 409 `cart_closed`, 409 `sku_unavailable` when
    raising the quantity of a SKU no longer sold. With `If-Match: <version>`,
    412 `version_mismatch` when the cart has changed since that version.
    """
    view = await service.update_item(
        tx,
        cart_id=cart_id,
        owner=owner,
        item_id=item_id,
        quantity=body.quantity,
        expected_version=expected_version,
        pricing=pricing,
    )
    return _read(view, response)


@router.delete(
    "/carts/{cart_id}/items/{item_id}",
    response_model=CartRead,
    responses=problem_responses(409, 412),
)
async def remove_item(
    tx: Tx,
    owner: CartAccess,
    cart_id: CartId,
    item_id: ItemId,
    expected_version: ExpectedVersion,
    pricing: CartPricing,
    response: Response,
) -> CartRead:
    """Remove a line; answers the cart without it.

    404 `cart_item_not_found`, 409 `cart_closed`. With `If-Match: <version>`,
    412 `version_mismatch` when the cart has changed since that version.
    """
    view = await service.remove_item(
        tx,
        cart_id=cart_id,
        owner=owner,
        item_id=item_id,
        expected_version=expected_version,
        pricing=pricing,
    )
    return _read(view, response)


@router.put(
    "/carts/{cart_id}/coupon", response_model=CartRead, responses=problem_responses(409, 412)
)
async def apply_coupon(
    tx: Tx,
    owner: CartAccess,
    cart_id: CartId,
    body: CouponApply,
    expected_version: ExpectedVersion,
    pricing: CartPricing,
    response: Response,
) -> CartRead:
    """Apply a coupon code (case-insensitive), replacing any other.

    422 `coupon_invalid` (with the reason in `detail`) when the code is unknown,
    not valid yet, expired, used up, already used by this customer as often as
    it allows, or the subtotal is below its minimum. The coupon is checked
    again at checkout. 409 `cart_closed`. With `If-Match: <version>`, 412
    `version_mismatch` when the cart has changed since that version.
    """
    view = await service.apply_coupon(
        tx,
        cart_id=cart_id,
        owner=owner,
        code=body.code,
        expected_version=expected_version,
        pricing=pricing,
    )
    return _read(view, response)


@router.delete(
    "/carts/{cart_id}/coupon", response_model=CartRead, responses=problem_responses(409, 412)
)
async def remove_coupon(
    tx: Tx,
    owner: CartAccess,
    cart_id: CartId,
    expected_version: ExpectedVersion,
    pricing: CartPricing,
    response: Response,
) -> CartRead:
    """Take the coupon off the cart. 409 `cart_closed`. With `If-Match: <version>`,
    412 `version_mismatch` when the cart has changed since that version."""
    view = await service.remove_coupon(
        tx, cart_id=cart_id, owner=owner, expected_version=expected_version, pricing=pricing
    )
    return _read(view, response)


@router.post(
    "/carts/{cart_id}/merge", response_model=CartRead, responses=problem_responses(409, 412)
)
async def merge_carts(
    tx: Tx,
    user: CurrentUser,
    cart_id: CartId,
    body: CartMerge,
    expected_version: ExpectedVersion,
    pricing: CartPricing,
    response: Response,
) -> CartRead:
    """Merge a guest cart (by its `cart_token`) into this cart of the signed-in user.

    Quantities of the same SKU are summed and capped at 99; new SKUs are added
    after the cart's own lines; the cart keeps its coupon, else takes the guest
    cart's. The guest cart becomes `merged` and can no longer change (409
    `cart_closed`, also for merging it again). 404 `cart_not_found` when this
    cart is not the caller's or no guest cart has the token; 422
    `too_many_lines` (nothing changes) when the result would pass 100 lines.
    With `If-Match: <version>` (of this cart), 412 `version_mismatch` when it
    has changed since that version.
    """
    view = await service.merge_carts(
        tx,
        cart_id=cart_id,
        user=user,
        cart_token=body.cart_token,
        expected_version=expected_version,
        pricing=pricing,
    )
    return _read(view, response)


@router.get(
    "/shipping-methods",
    response_model=Page[ShippingMethodRead],
    tags=["shipping and tax"],
    dependencies=SHORT_LIST,
)
async def list_shipping_methods(
    request: Request,
    country: Annotated[
        str | None,
        Query(max_length=8, description="ISO 3166-1 alpha-2; only methods shipping there."),
    ] = None,
) -> Page[ShippingMethodRead]:
    """The shipping methods (all of them without `?country=`), in the shop currency.

    A method with `free_from` costs nothing once the cart's subtotal reaches it.
    A short fixed list: `next_cursor` is always null. 422 `invalid_country` for
    a malformed country code.
    """
    currency = shop_settings(request).currency
    methods = service.list_shipping_methods(currency=currency, country=country)
    return shipping_method_page(methods)
