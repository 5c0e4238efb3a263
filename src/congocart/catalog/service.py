"""Catalog use cases: the storefront's reads, the admin's writes, and the stock
operations carts and checkout build on.

Stock functions run a bounded number of statements whatever the number of
lines, and take row locks in ascending SKU order so concurrent multi-line
reservations can never deadlock.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from congocart.catalog import repository
from congocart.catalog.demo import CATEGORIES, demo_product
from congocart.catalog.domain import (
    AVAILABLE_HOLE,
    DEFAULT_VARIANT_NAME,
    SLUG_MAX_LENGTH,
    Category,
    NewProduct,
    NewVariant,
    PageTemplate,
    ProductChanges,
    ProductDocument,
    ProductFilter,
    ProductPage,
    ProductSort,
    ProductView,
    StockLevel,
    VariantSnapshot,
    category_name,
    is_sku,
    is_slug,
    is_uuid,
    search_prefix_query,
    stock_lines,
)
from congocart.catalog.errors import (
    InsufficientStock,
    InvalidPriceRange,
    OutOfStock,
    ProductNotFound,
    SkuNotFound,
    SkuTaken,
    SlugTaken,
    StockLimitExceeded,
    StockNotReserved,
    WrongCurrency,
)
from congocart.core.db import Connection, Params
from congocart.core.money import Money
from congocart.core.pagination import InvalidCursor, cursor_time, decode_cursor, encode_cursor
from congocart.core.rendering import json_bytes

__all__ = [
    "COMMIT_STOCK_OUTCOME",
    "RESERVE_STOCK_AVAILABLE",
    "RESERVE_STOCK_OUTCOME",
    "OutOfStock",
    "ProductPages",
    "SeedResult",
    "VariantSnapshot",
    "add_variant",
    "adjust_stock",
    "archive_product",
    "commit_stock",
    "commit_stock_sql",
    "create_product",
    "get_product",
    "get_variants",
    "list_categories",
    "list_products",
    "list_products_json",
    "release_stock",
    "reserve_stock",
    "reserve_stock_lock_sql",
    "reserve_stock_take_sql",
    "reserved_or_raise",
    "restock",
    "seed_demo_catalog",
    "sold_or_raise",
    "update_product",
    "update_variant",
    "variant_snapshots",
    "variant_snapshots_sql",
]

_SLUG_ATTEMPTS = 3

# ---------------------------------------------------------------- storefront reads


async def list_products(
    conn: Connection,
    *,
    currency: str,
    q: str | None = None,
    category: str | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    sort: ProductSort = ProductSort.NEWEST,
    limit: int = 20,
    cursor: str | None = None,
) -> ProductPage:
    """A page of live products. Prices filter and sort on each product's lowest
    variant price (its "from" price), in the shop currency."""
    listing = _listing(
        currency=currency,
        q=q,
        category=category,
        min_price=min_price,
        max_price=max_price,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    _, page = await _product_page(conn, listing)
    return page


class ProductPages:
    """This process's rendered product list pages, each tagged with the catalog
    revision it was read at. The least recently used go when the pages hold
    more than `max_bytes` (a page of 100 products with long descriptions is
    half a megabyte; the storefront's usual pages are about 11 KB)."""

    def __init__(self, *, max_bytes: int = 32 * 2**20) -> None:
        self._templates: OrderedDict[Hashable, PageTemplate] = OrderedDict()
        self._max_bytes = max_bytes
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._templates)

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def get(self, key: Hashable) -> PageTemplate | None:
        template = self._templates.get(key)
        if template is not None:
            self._templates.move_to_end(key)
        return template

    def put(self, key: Hashable, template: PageTemplate) -> None:
        replaced = self._templates.pop(key, None)
        if replaced is not None:
            self._bytes -= replaced.size
        if template.size > self._max_bytes:
            return
        self._templates[key] = template
        self._bytes += template.size
        while self._bytes > self._max_bytes:
            _, dropped = self._templates.popitem(last=False)
            self._bytes -= dropped.size


async def list_products_json(
    conn: Connection,
    *,
    pages: ProductPages,
    currency: str,
    q: str | None = None,
    category: str | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    sort: ProductSort = ProductSort.NEWEST,
    limit: int = 20,
    cursor: str | None = None,
) -> bytes:
    """`list_products` as the JSON body of the answer, from `pages` when fresh.

    Fresh means: one statement reads the catalog revision and the live stock of
    the cached page's SKUs, and the revision is the page's. Every write to what
    a page shows moves the revision in its own transaction (triggers, migration
    0005), so once a write is acknowledged no process serves a page from before
    it; stock is never cached. A stale or missing page costs the full query.
    """
    listing = _listing(
        currency=currency,
        q=q,
        category=category,
        min_price=min_price,
        max_price=max_price,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    cached = pages.get(listing)
    if cached is not None:
        current, live = await repository.get_live_stock(conn, cached.skus)
        if current == cached.revision and len(live) == len(cached.skus):
            return cached.fill(live)
    revision, page = await _product_page(conn, listing)
    skus: list[str] = []
    available: list[int] = []
    for product in page.items:
        for variant in product["variants"]:
            skus.append(variant["sku"])
            available.append(variant["available"])
            # A hole in place of the count (see PageTemplate); filled again below.
            variant["available"] = _HOLE  # type: ignore[typeddict-item]
    template = PageTemplate.of(
        json_bytes({"items": page.items, "next_cursor": page.next_cursor}),
        revision=revision,
        skus=skus,
    )
    pages.put(listing, template)
    return template.fill(available)


_HOLE = orjson.Fragment(AVAILABLE_HOLE)


@dataclass(frozen=True, slots=True)
class _Listing:
    """A validated product list request; also the key of its page in `ProductPages`."""

    where: ProductFilter
    sort: ProductSort
    after: tuple[Any, UUID] | None
    limit: int


def _listing(
    *,
    currency: str,
    q: str | None,
    category: str | None,
    min_price: Decimal | None,
    max_price: Decimal | None,
    sort: ProductSort,
    limit: int,
    cursor: str | None,
) -> _Listing:
    min_minor = _price_bound(min_price, currency=currency, field="min_price")
    max_minor = _price_bound(max_price, currency=currency, field="max_price")
    if min_minor is not None and max_minor is not None and min_minor > max_minor:
        raise InvalidPriceRange(field="min_price", message="must not exceed max_price")
    where = ProductFilter(
        search=search_prefix_query(q) if q else None,
        category=category,
        min_price_minor=min_minor,
        max_price_minor=max_minor,
    )
    after = None if cursor is None else _decode_product_cursor(cursor, sort)
    return _Listing(where=where, sort=sort, after=after, limit=limit)


async def _product_page(conn: Connection, listing: _Listing) -> tuple[int, ProductPage]:
    limit, sort = listing.limit, listing.sort
    revision, listed = await repository.list_product_documents(
        conn, where=listing.where, sort=sort, after=listing.after, limit=limit + 1
    )
    next_cursor = None
    if len(listed) > limit:
        last, key = listed[limit - 1]
        encoded_key = key.isoformat() if isinstance(key, datetime) else key
        next_cursor = encode_cursor([sort.value, encoded_key, last["id"]])
    page = ProductPage(items=[document for document, _ in listed[:limit]], next_cursor=next_cursor)
    return revision, page


def _price_bound(value: Decimal | None, *, currency: str, field: str) -> int | None:
    if value is None:
        return None
    price = Money(value, currency)
    if value < 0 or not price.is_exact():
        raise InvalidPriceRange(field=field, message=f"must be a non-negative amount of {currency}")
    return price.to_minor()


def _decode_product_cursor(cursor: str, sort: ProductSort) -> tuple[Any, UUID]:
    sort_name, key, product_id = decode_cursor(cursor, length=3)
    if sort_name != sort.value or not isinstance(product_id, str):
        raise InvalidCursor
    try:
        if sort is ProductSort.NEWEST:
            return cursor_time(key), UUID(product_id)
        # PostgreSQL text holds no NUL, and a price key is a bigint.
        if sort is ProductSort.NAME and isinstance(key, str) and "\x00" not in key:
            return key, UUID(product_id)
        prices = (ProductSort.PRICE_ASC, ProductSort.PRICE_DESC)
        if sort in prices and type(key) is int and -(2**63) <= key < 2**63:
            return key, UUID(product_id)
    except ValueError as exc:
        raise InvalidCursor from exc
    raise InvalidCursor


async def get_product(conn: Connection, *, id_or_slug: str) -> ProductDocument:
    """A live product by its id or its slug; archived products are not found."""
    if is_uuid(id_or_slug):
        product = await repository.get_product_document(conn, product_id=UUID(id_or_slug))
    elif is_slug(id_or_slug):
        product = await repository.get_product_document(conn, slug=id_or_slug)
    else:
        product = None
    if product is None:
        raise ProductNotFound
    return product


async def list_categories(conn: Connection) -> list[Category]:
    return await repository.list_categories(conn)


# ---------------------------------------------------------------- admin writes


async def create_product(
    tx: Connection, *, product: NewProduct, currency: str, actor_id: UUID | None
) -> ProductView:
    """Create a product with its variants and their initial stock.

    A slug derived from the name gets a short random suffix when taken; a slug
    the caller chose is theirs or a 409.
    """
    for i, variant in enumerate(product.variants):
        _require_currency(variant.price, currency=currency, field=f"variants.{i}.price.currency")
    if product.category is not None:
        await repository.ensure_category(
            tx, slug=product.category, name=category_name(product.category)
        )
    base_slug = product.base_slug()
    product_id = None
    for attempt in range(_SLUG_ATTEMPTS):
        suffix = f"-{secrets.token_hex(3)}" if attempt else ""
        slug = base_slug[: SLUG_MAX_LENGTH - len(suffix)].rstrip("-") + suffix
        product_id = await repository.insert_product(
            tx,
            slug=slug,
            name=product.name,
            description=product.description,
            category=product.category,
            min_price_minor=product.min_price().to_minor(),
        )
        if product_id is not None or product.slug is not None:
            break
    if product_id is None:
        raise SlugTaken
    await _insert_variants(tx, product_id=product_id, variants=product.variants, actor_id=actor_id)
    return await _product_view(tx, product_id)


async def update_product(
    tx: Connection, *, product_id: UUID, changes: ProductChanges
) -> ProductView:
    current = await repository.get_product_fields_for_update(tx, product_id)
    if current is None:
        raise ProductNotFound
    # Name and slug are never null when given; description may become empty and
    # category may be cleared, so for those two "given" is read from `fields`.
    fields = changes.fields
    category = changes.category if "category" in fields else current["category_slug"]
    if category is not None and category != current["category_slug"]:
        await repository.ensure_category(tx, slug=category, name=category_name(category))
    await repository.update_product(
        tx,
        product_id=product_id,
        slug=changes.slug or current["slug"],
        name=changes.name or current["name"],
        description=(
            changes.description if changes.description is not None else current["description"]
        ),
        category=category,
    )
    return await _product_view(tx, product_id)


async def add_variant(
    tx: Connection,
    *,
    product_id: UUID,
    variant: NewVariant,
    currency: str,
    actor_id: UUID | None,
) -> ProductView:
    _require_currency(variant.price, currency=currency, field="price.currency")
    if not await repository.lock_live_product(tx, product_id):
        raise ProductNotFound
    await _insert_variants(tx, product_id=product_id, variants=[variant], actor_id=actor_id)
    await repository.refresh_product(tx, product_id)
    return await _product_view(tx, product_id)


async def update_variant(
    tx: Connection,
    *,
    sku: str,
    currency: str,
    name: str | None = None,
    price: Money | None = None,
) -> ProductView:
    """Rename or reprice a variant; the product's "from" price follows in the same
    transaction."""
    if price is not None:
        _require_currency(price, currency=currency, field="price.currency")
    if not is_sku(sku):
        raise SkuNotFound
    product_id = await repository.update_variant(
        tx, sku=sku, name=name, price_minor=None if price is None else price.to_minor()
    )
    if product_id is None:
        raise SkuNotFound
    await repository.refresh_product(tx, product_id)
    return await _product_view(tx, product_id)


async def archive_product(tx: Connection, *, product_id: UUID) -> None:
    """Stop selling and listing a product. Its rows stay, so past orders and
    reservations still resolve its SKUs."""
    if not await repository.archive_product(tx, product_id):
        raise ProductNotFound


async def adjust_stock(
    tx: Connection, *, sku: str, delta: int, reason: str, actor_id: UUID | None
) -> StockLevel:
    """Add or remove on-hand units (a count, a delivery, shrinkage) with a ledger row.

    One conditional UPDATE: on-hand never drops below what is reserved.
    """
    if not is_sku(sku):
        raise SkuNotFound
    level = await repository.adjust_on_hand(
        tx, sku=sku, delta=delta, reason=reason, actor_id=actor_id
    )
    if level is not None:
        return level
    current = await repository.get_stock_level(tx, sku)
    if current is None:
        raise SkuNotFound
    if current.on_hand + delta < current.reserved:
        raise InsufficientStock(
            f"{sku} has {current.on_hand} on hand and {current.reserved} reserved; "
            f"removing {-delta} would leave less than is reserved."
        )
    raise StockLimitExceeded


def _require_currency(price: Money, *, currency: str, field: str) -> None:
    if price.currency != currency:
        raise WrongCurrency(field=field, currency=currency)


async def _insert_variants(
    tx: Connection,
    *,
    product_id: UUID,
    variants: Sequence[NewVariant],
    actor_id: UUID | None,
) -> None:
    skus = [v.sku for v in variants]
    inserted = await repository.insert_variants(
        tx,
        product_id=product_id,
        skus=skus,
        names=[v.name or DEFAULT_VARIANT_NAME for v in variants],
        prices_minor=[v.price.to_minor() for v in variants],
        currency=variants[0].price.currency,
        stocks=[v.stock for v in variants],
        reason="initial stock",
        actor_id=actor_id,
    )
    if len(inserted) != len(skus):
        raise SkuTaken(sorted(set(skus) - set(inserted)))


async def _product_view(conn: Connection, product_id: UUID) -> ProductView:
    product = await repository.get_product_view(conn, product_id)
    if product is None:
        raise ProductNotFound
    return product


# ---------------------------------------------------------------- stock for carts and checkout


async def get_variants(conn: Connection, *, skus: Sequence[str]) -> dict[str, VariantSnapshot]:
    """The named variants as they are now (one query); unknown SKUs are absent."""
    wanted = {sku for sku in skus if is_sku(sku)}
    if not wanted:
        return {}
    return {v.sku: v for v in await repository.get_variants(conn, list(wanted))}


def variant_snapshots_sql(skus: str) -> str:
    """`get_variants` as a part of another feature's statement (a round trip saved):
    a jsonb expression of the variants whose SKU is in the `text[]` SQL expression
    `skus`, read back with `variant_snapshots`."""
    return repository.variant_snapshots_sql(skus)


def variant_snapshots(raw: list[list[Any]]) -> dict[str, VariantSnapshot]:
    """The variants of a `variant_snapshots_sql` part, by SKU."""
    return {v.sku: v for v in repository.variant_snapshots(raw)}


async def reserve_stock(tx: Connection, *, lines: Mapping[str, int]) -> None:
    """Reserve `quantity` units of each SKU, all or nothing, in one statement.

    The variant rows are locked in ascending SKU order, so concurrent
    reservations of overlapping SKUs queue instead of deadlocking; then
    conditional UPDATEs take the stock, only if every line can be had. Raises
    `OutOfStock` naming every SKU that is short, unknown or no longer sold
    (nothing is reserved then).
    """
    _require_transaction(tx)
    if not lines:
        return
    skus, quantities = stock_lines(lines)
    unknown = [sku for sku in skus if not is_sku(sku)]
    if unknown:
        raise OutOfStock(unknown)
    reserved_or_raise(lines, await repository.reserve(tx, skus, quantities))


def reserve_stock_lock_sql(p: Params, *, lines: Mapping[str, int], only_if: str) -> str:
    """`reserve_stock` as parts of another feature's statement (a round trip
    saved), first part: the variants locked in SKU order with what they have
    available, when the SQL condition `only_if` holds. `RESERVE_STOCK_AVAILABLE`
    then says whether every line can be had; `reserve_stock_take_sql` follows;
    the statement selects `RESERVE_STOCK_OUTCOME` for `reserved_or_raise`."""
    skus, quantities = stock_lines(lines)
    return repository.reserve_lock_sql(p, skus, quantities, only_if=only_if)


def reserve_stock_take_sql(p: Params, only_if: str) -> str:
    """The second part: the stock taken, only if every line can be had and the
    SQL condition `only_if` holds."""
    return repository.reserve_take_sql(only_if=only_if)


RESERVE_STOCK_AVAILABLE = repository.ALL_AVAILABLE
RESERVE_STOCK_OUTCOME = repository.RESERVE_OUTCOME


def reserved_or_raise(lines: Mapping[str, int], outcome: Any) -> None:
    """Raise `OutOfStock` unless the reservation whose outcome this is took every line."""
    skus, _ = stock_lines(lines)
    reserved, short = repository.reserve_outcome(skus, outcome)
    if short:
        raise OutOfStock(short)
    if len(reserved) != len(skus):  # cannot happen: the UPDATEs run under the locks
        raise OutOfStock(sorted(set(skus) - set(reserved)))


async def release_stock(tx: Connection, *, lines: Mapping[str, int]) -> None:
    """Give reserved units back (an abandoned or failed checkout)."""
    _require_transaction(tx)
    if not lines:
        return
    skus, quantities = stock_lines(lines)
    released = await repository.release(tx, skus, quantities)
    if len(released) != len(skus):
        raise StockNotReserved(sorted(set(skus) - set(released)))


async def commit_stock(tx: Connection, *, lines: Mapping[str, int], reason: str = "sale") -> None:
    """Turn reserved units into a sale: on-hand and reserved both drop by the quantity."""
    _require_transaction(tx)
    if not lines:
        return
    skus, quantities = stock_lines(lines)
    sold_or_raise(lines, await repository.sell(tx, skus, quantities, reason=reason))


def commit_stock_sql(
    p: Params, *, lines: Mapping[str, int], reason: str = "sale", only_if: str = "true"
) -> str:
    """`commit_stock` as CTEs of another feature's statement (a round trip saved),
    applied when the SQL condition `only_if` holds. The statement selects
    `COMMIT_STOCK_OUTCOME`; pass it to `sold_or_raise`. It must run in a transaction."""
    skus, quantities = stock_lines(lines)
    return repository.sell_sql(p, skus, quantities, reason=reason, only_if=only_if)


COMMIT_STOCK_OUTCOME = repository.SALE_OUTCOME


def sold_or_raise(lines: Mapping[str, int], sold: Sequence[str]) -> None:
    """`StockNotReserved` unless every line was sold (a bookkeeping error of the caller)."""
    missing = sorted(set(lines) - set(sold))
    if missing:
        raise StockNotReserved(missing)


async def restock(
    tx: Connection, *, lines: Mapping[str, int], reason: str, actor_id: UUID | None
) -> None:
    """Put sold units back on hand (a cancellation or a return), with ledger rows."""
    _require_transaction(tx)
    if not lines:
        return
    skus, quantities = stock_lines(lines)
    restocked = await repository.restock(tx, skus, quantities, reason=reason, actor_id=actor_id)
    if len(restocked) != len(skus):
        raise SkuNotFound(f"Unknown SKU: {', '.join(sorted(set(skus) - set(restocked)))}.")


def _require_transaction(tx: Connection) -> None:
    # Row locks outside a transaction are released at once; that would be a bug.
    if not tx.is_in_transaction():
        raise RuntimeError("stock operations must run inside a transaction")


# ---------------------------------------------------------------- demo catalog


@dataclass(frozen=True, slots=True)
class SeedResult:
    products: int
    variants: int


async def seed_demo_catalog(
    tx: Connection, *, products: int, currency: str, variants: int | None = None
) -> SeedResult:
    """Load the first `products` demo products (idempotent: existing ones are kept),
    each with `variants` variants, or 1 to 3 by turns when None.

    Bulk statements, so ten thousand products take seconds.
    """
    for slug, name, _, _ in CATEGORIES:
        await repository.ensure_category(tx, slug=slug, name=name)
    demo = [demo_product(n, variants=variants) for n in range(products)]
    rows = [(p.slug, position, v) for p in demo for position, v in enumerate(p.variants)]
    created_products, created_variants = await repository.insert_demo_catalog(
        tx,
        slugs=[p.slug for p in demo],
        names=[p.name for p in demo],
        descriptions=[p.description for p in demo],
        categories=[p.category for p in demo],
        min_prices_minor=[min(v.price_minor for v in p.variants) for p in demo],
        variant_slugs=[slug for slug, _, _ in rows],
        skus=[v.sku for _, _, v in rows],
        variant_names=[v.name for _, _, v in rows],
        prices_minor=[v.price_minor for _, _, v in rows],
        currency=currency,
        stocks=[v.stock for _, _, v in rows],
        positions=[position for _, position, _ in rows],
    )
    return SeedResult(products=created_products, variants=created_variants)
