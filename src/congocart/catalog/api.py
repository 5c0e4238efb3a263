"""Catalog routes: the storefront (anyone) and catalog administration."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response

from congocart.catalog import service
from congocart.catalog.domain import SLUG_PATTERN, ProductSort, is_uuid
from congocart.catalog.errors import ProductNotFound
from congocart.catalog.schemas import (
    AdjustmentCreate,
    CategoryList,
    ProductCreate,
    ProductList,
    ProductRead,
    ProductUpdate,
    StockLevelRead,
    VariantCreate,
    VariantUpdate,
)
from congocart.config import Settings
from congocart.core.db import Conn, Tx, get_database
from congocart.core.errors import problem_responses
from congocart.core.pagination import SHORT_LIST, Cursor, Limit
from congocart.core.responses import json_body, json_response
from congocart.identity.dependencies import AdminUser, StaffUser

router = APIRouter(tags=["catalog"])

PRICE_PATTERN = r"^\d{1,12}(\.\d{1,4})?$"
PriceBound = Annotated[
    str | None,
    Query(pattern=PRICE_PATTERN, description="Decimal amount in the shop currency, e.g. `19.99`."),
]


def _shop_currency(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.currency


# The contract's name for the path parameter (`/admin/products/{id}`).
ProductIdParam = Annotated[str, Path(alias="id", description="The product's id.")]


def _product_pages(request: Request) -> service.ProductPages:
    """This process's cache of rendered product list pages (see the service)."""
    pages: service.ProductPages | None = getattr(request.app.state, "product_pages", None)
    if pages is None:
        pages = request.app.state.product_pages = service.ProductPages()
    return pages


def _product_id(value: str) -> UUID:
    # A malformed id names no product: 404, like an unknown one.
    if not is_uuid(value):
        raise ProductNotFound
    return UUID(value)


# The storefront's reads answer ready-made JSON bytes of plain dicts (see
# core.responses); `response_model` keeps their schema in the API docs. They
# take their connection from the pool themselves, for the one statement they
# run: a `Conn` dependency (a generator FastAPI enters and exits around the
# route) costs more CPU than the pool does.
@router.get("/products", response_model=ProductList)
async def list_products(
    request: Request,
    q: Annotated[str | None, Query(max_length=200, description="Search words.")] = None,
    category: Annotated[
        str | None, Query(pattern=SLUG_PATTERN, max_length=100, description="Category slug.")
    ] = None,
    min_price: PriceBound = None,
    max_price: PriceBound = None,
    sort: ProductSort = ProductSort.NEWEST,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Browse live products, newest first unless `sort` says otherwise.

    `q` matches words of the name and description, each word also as a prefix
    (`shi` finds "shirt"). Price filters and price sorts use each product's
    lowest variant price. Pages are keyset-based: following `next_cursor` never
    repeats or skips a product, even while products are being added.
    """
    async with get_database(request).acquire() as conn:
        body = await service.list_products_json(
            conn,
            pages=_product_pages(request),
            currency=_shop_currency(request),
            q=q,
            category=category,
            min_price=None if min_price is None else Decimal(min_price),
            max_price=None if max_price is None else Decimal(max_price),
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
    return json_body(body)


@router.get("/products/{id_or_slug}", response_model=ProductRead)
async def get_product(
    request: Request, id_or_slug: Annotated[str, Path(max_length=200)]
) -> Response:
    """One live product, by id or by slug. Archived products are not found."""
    async with get_database(request).acquire() as conn:
        product = await service.get_product(conn, id_or_slug=id_or_slug)
    return json_response(product)


@router.get("/categories", response_model=CategoryList, dependencies=SHORT_LIST)
async def list_categories(conn: Conn) -> CategoryList:
    """Every category, by name (a short list: `next_cursor` is always null)."""
    return CategoryList.of(await service.list_categories(conn))


@router.post(
    "/admin/products",
    status_code=201,
    response_model=ProductRead,
    responses=problem_responses(403, 409),
)
async def create_product(
    request: Request, tx: Tx, admin: AdminUser, body: ProductCreate
) -> ProductRead:
    """Create a product with its variants and initial stock (admin).

    Without a `slug` one is derived from the name (with a short suffix if that
    is taken). A new `category` slug creates the category. Prices must be in
    the shop currency. 409 `slug_taken` / `sku_taken` when either is in use.
    """
    product = await service.create_product(
        tx, product=body.to_domain(), currency=_shop_currency(request), actor_id=admin.id
    )
    return ProductRead.of(product)


@router.patch(
    "/admin/products/{id}", response_model=ProductRead, responses=problem_responses(403, 409)
)
async def update_product(
    tx: Tx, admin: AdminUser, product_id: ProductIdParam, body: ProductUpdate
) -> ProductRead:
    """Change a product's name, slug, description or category (admin)."""
    product = await service.update_product(
        tx, product_id=_product_id(product_id), changes=body.to_domain()
    )
    return ProductRead.of(product)


@router.post(
    "/admin/products/{id}/variants",
    status_code=201,
    response_model=ProductRead,
    responses=problem_responses(403, 409),
)
async def add_variant(
    request: Request, tx: Tx, admin: AdminUser, product_id: ProductIdParam, body: VariantCreate
) -> ProductRead:
    """Add a variant, with its initial stock, to a product (admin); answers the product."""
    product = await service.add_variant(
        tx,
        product_id=_product_id(product_id),
        variant=body.to_domain(),
        currency=_shop_currency(request),
        actor_id=admin.id,
    )
    return ProductRead.of(product)


@router.patch("/admin/variants/{sku}", response_model=ProductRead, responses=problem_responses(403))
async def update_variant(
    request: Request, tx: Tx, admin: AdminUser, sku: str, body: VariantUpdate
) -> ProductRead:
    """Rename or reprice a variant (admin); answers its product. Carts show the new
    price at once; orders already placed keep theirs."""
    product = await service.update_variant(
        tx,
        sku=sku,
        currency=_shop_currency(request),
        name=body.name,
        price=None if body.price is None else body.price.to_money(),
    )
    return ProductRead.of(product)


@router.delete("/admin/products/{id}", status_code=204, responses=problem_responses(403))
async def archive_product(tx: Tx, admin: AdminUser, product_id: ProductIdParam) -> Response:
    """Archive a product (admin): no longer listed or sold, still shown on past orders."""
    await service.archive_product(tx, product_id=_product_id(product_id))
    return Response(status_code=204)


@router.post(
    "/admin/inventory/{sku}/adjustments",
    response_model=StockLevelRead,
    responses=problem_responses(403, 409),
)
async def adjust_stock(
    tx: Tx, staff: StaffUser, sku: str, body: AdjustmentCreate
) -> StockLevelRead:
    """Add (positive `delta`) or remove (negative) on-hand units, with a reason
    (staff or admin). 409 `insufficient_stock` if on-hand would drop below what
    is reserved by checkouts in progress."""
    level = await service.adjust_stock(
        tx, sku=sku, delta=body.delta, reason=body.reason, actor_id=staff.id
    )
    return StockLevelRead.of(level)
