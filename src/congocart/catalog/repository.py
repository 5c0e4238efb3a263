"""Catalog SQL: products, variants, stock and the inventory ledger.

Every statement is written out with `$n` parameters; listing filters are
composed from the fixed fragments below. Stock writes lock rows in ascending
SKU order (or are a single-row conditional UPDATE), so two transactions never
wait on each other in opposite orders. The locks are `FOR NO KEY UPDATE`, the
lock an UPDATE of non-key columns takes anyway: stock writers queue behind each
other, while rows that merely reference a SKU can still be inserted meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from congocart.catalog.domain import (
    MAX_STOCK,
    Category,
    ProductDocument,
    ProductFilter,
    ProductSort,
    ProductView,
    StockLevel,
    VariantSnapshot,
    VariantView,
)
from congocart.catalog.errors import SlugTaken
from congocart.core.db import Connection, Params
from congocart.core.money import Money, amount_text

# ---------------------------------------------------------------- categories


async def ensure_category(conn: Connection, *, slug: str, name: str) -> None:
    await conn.execute(
        "INSERT INTO categories (slug, name) VALUES ($1, $2) ON CONFLICT (slug) DO NOTHING",
        slug,
        name,
    )


async def list_categories(conn: Connection) -> list[Category]:
    rows = await conn.fetch("SELECT slug, name FROM categories ORDER BY name, slug")
    return [Category(slug=r["slug"], name=r["name"]) for r in rows]


# ---------------------------------------------------------------- products


async def insert_product(
    conn: Connection,
    *,
    slug: str,
    name: str,
    description: str,
    category: str | None,
    min_price_minor: int,
) -> UUID | None:
    """The new product's id, or None when the slug is taken."""
    product_id: UUID | None = await conn.fetchval(
        """
        INSERT INTO products (slug, name, description, category_slug, min_price_minor,
                              created_at, updated_at)
        SELECT $1, $2, $3, $4, $5, t.now, t.now FROM (SELECT clock_timestamp() AS now) t
        ON CONFLICT (slug) DO NOTHING
        RETURNING id
        """,
        slug,
        name,
        description,
        category,
        min_price_minor,
    )
    return product_id


async def insert_variants(
    conn: Connection,
    *,
    product_id: UUID,
    skus: Sequence[str],
    names: Sequence[str],
    prices_minor: Sequence[int],
    currency: str,
    stocks: Sequence[int],
    reason: str,
    actor_id: UUID | None,
) -> list[str]:
    """Add variants after the product's existing ones, with a ledger row for any
    initial stock. Returns the SKUs inserted; a SKU already in use is skipped."""
    rows = await conn.fetch(
        """
        WITH inserted AS (
            INSERT INTO variants (sku, product_id, name, price_minor, currency, on_hand, position)
            SELECT l.sku, $1, l.name, l.price_minor, $5, l.stock,
                   l.n + coalesce((SELECT max(position) FROM variants WHERE product_id = $1), -1)
            FROM unnest($2::text[], $3::text[], $4::bigint[], $6::int[])
                 WITH ORDINALITY AS l(sku, name, price_minor, stock, n)
            ON CONFLICT (sku) DO NOTHING
            RETURNING sku, on_hand
        ), ledger AS (
            INSERT INTO inventory_adjustments (sku, delta, reason, actor_id, on_hand_after)
            SELECT sku, on_hand, $7, $8, on_hand FROM inserted WHERE on_hand > 0
        )
        SELECT sku FROM inserted
        """,
        product_id,
        list(skus),
        list(names),
        list(prices_minor),
        currency,
        list(stocks),
        reason,
        actor_id,
    )
    return [r["sku"] for r in rows]


async def refresh_product(conn: Connection, product_id: UUID) -> None:
    """Recompute the "from" price after a variant write, and mark the product changed."""
    await conn.execute(
        """
        UPDATE products p
        SET min_price_minor = coalesce(
                (SELECT min(v.price_minor) FROM variants v
                 WHERE v.product_id = p.id AND v.archived_at IS NULL),
                p.min_price_minor),
            updated_at = clock_timestamp()
        WHERE p.id = $1
        """,
        product_id,
    )


async def get_product_fields_for_update(
    conn: Connection, product_id: UUID
) -> asyncpg.Record | None:
    """A live product's editable fields, its row locked for the update that follows."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        SELECT id, slug, name, description, category_slug FROM products
        WHERE id = $1 AND archived_at IS NULL
        FOR NO KEY UPDATE
        """,
        product_id,
    )
    return row


async def update_product(
    conn: Connection,
    *,
    product_id: UUID,
    slug: str,
    name: str,
    description: str,
    category: str | None,
) -> None:
    try:
        await conn.execute(
            """
            UPDATE products
            SET slug = $2, name = $3, description = $4, category_slug = $5,
                updated_at = clock_timestamp()
            WHERE id = $1
            """,
            product_id,
            slug,
            name,
            description,
            category,
        )
    except asyncpg.UniqueViolationError as exc:
        # The transaction is aborted either way; the request rolls back and answers 409.
        raise SlugTaken from exc


async def archive_product(conn: Connection, product_id: UUID) -> bool:
    """Stop selling and listing a live product; False when there is none."""
    result: str = await conn.execute(
        """
        UPDATE products SET archived_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE id = $1 AND archived_at IS NULL
        """,
        product_id,
    )
    return result == "UPDATE 1"


async def lock_live_product(conn: Connection, product_id: UUID) -> bool:
    """Lock a live product's row for the variant write that follows; False when
    there is none. (Catalog writes lock the product row before any variant row
    and the catalog revision last, so two of them never wait on each other in
    opposite orders.)"""
    locked = await conn.fetchval(
        "SELECT 1 FROM products WHERE id = $1 AND archived_at IS NULL FOR NO KEY UPDATE",
        product_id,
    )
    return locked is not None


async def update_variant(
    conn: Connection,
    *,
    sku: str,
    name: str | None,
    price_minor: int | None,
) -> UUID | None:
    """Rename or reprice a variant of a live product; its product's id, or None.

    The product's row is locked first, as every catalog write does (see
    `lock_live_product`)."""
    product_id: UUID | None = await conn.fetchval(
        """
        WITH product AS MATERIALIZED (
            SELECT p.id FROM variants v JOIN products p ON p.id = v.product_id
            WHERE v.sku = $1 AND p.archived_at IS NULL
            FOR NO KEY UPDATE OF p
        )
        UPDATE variants v
        SET name = coalesce($2, v.name), price_minor = coalesce($3, v.price_minor),
            updated_at = now()
        FROM product
        WHERE v.sku = $1 AND v.product_id = product.id
        RETURNING v.product_id
        """,
        sku,
        name,
        price_minor,
    )
    return product_id


# ---------------------------------------------------------------- read side

_VARIANTS_JSON = """
    SELECT coalesce(json_agg(json_build_object(
               'sku', v.sku, 'name', v.name, 'price_minor', v.price_minor,
               'currency', v.currency, 'available', v.on_hand - v.reserved)
               ORDER BY v.position, v.sku), '[]'::json)
    FROM variants v
    WHERE v.product_id = page.id AND v.archived_at IS NULL
"""

_PRODUCT_COLUMNS = (
    "id, slug, name, description, category_slug, min_price_minor, created_at, updated_at"
)

# Per sort: the ORDER BY (the same in the page and around it) and the keyset
# predicate "after the cursor's (key, id)", each backed by a partial index.
_ORDER_BY = {
    ProductSort.NEWEST: "created_at DESC, id DESC",
    ProductSort.PRICE_ASC: "min_price_minor ASC, id ASC",
    ProductSort.PRICE_DESC: "min_price_minor DESC, id DESC",
    ProductSort.NAME: "lower(name) ASC, id ASC",
}
_AFTER = {
    ProductSort.NEWEST: "(created_at, id) < (${}::timestamptz, ${}::uuid)",
    ProductSort.PRICE_ASC: "(min_price_minor, id) > (${}::bigint, ${}::uuid)",
    ProductSort.PRICE_DESC: "(min_price_minor, id) < (${}::bigint, ${}::uuid)",
    ProductSort.NAME: "(lower(name), id) > (${}::text, ${}::uuid)",
}
_SEARCH = "search @@ (to_tsquery('simple', ${0}) || to_tsquery('english', ${0}))"
_CATEGORY = "category_slug = ${}"
_MIN_PRICE = "min_price_minor >= ${}::bigint"
_MAX_PRICE = "min_price_minor <= ${}::bigint"


# The storefront's reads: one row per variant (a product without variants gets
# one row of NULLs), its product's columns repeated, in page order. A flat
# join costs PostgreSQL a fraction of building JSON per product, and the rows
# become JSON-ready dicts with no model or Decimal in between. The last
# column is the catalog revision the statement saw (see `get_live_stock`).
_DOCUMENT_COLUMNS = """
    p.id::text, p.slug, p.name, p.description, p.category_slug, p.created_at, p.updated_at,
    p.sort_key, v.sku, v.name, v.price_minor, v.currency, v.on_hand - v.reserved
"""
_DOCUMENT_VARIANTS = "LEFT JOIN variants v ON v.product_id = p.id AND v.archived_at IS NULL"
_SORT_KEY = {
    ProductSort.NEWEST: ("created_at", "DESC"),
    ProductSort.PRICE_ASC: ("min_price_minor", "ASC"),
    ProductSort.PRICE_DESC: ("min_price_minor", "DESC"),
    ProductSort.NAME: ("lower(name)", "ASC"),
}


async def list_product_documents(
    conn: Connection,
    *,
    where: ProductFilter,
    sort: ProductSort,
    after: tuple[Any, UUID] | None,
    limit: int,
) -> tuple[int, list[tuple[ProductDocument, Any]]]:
    """One page of live products with their variants, in one statement; each
    with the value of its sort column, as a cursor carries it. Also the catalog
    revision the page was read at (an empty page too: one row of NULLs)."""
    params: list[Any] = []

    def param(value: Any) -> int:
        params.append(value)
        return len(params)

    conditions = ["archived_at IS NULL"]
    if where.search is not None:
        conditions.append(_SEARCH.format(param(where.search)))
    if where.category is not None:
        conditions.append(_CATEGORY.format(param(where.category)))
    if where.min_price_minor is not None:
        conditions.append(_MIN_PRICE.format(param(where.min_price_minor)))
    if where.max_price_minor is not None:
        conditions.append(_MAX_PRICE.format(param(where.max_price_minor)))
    if after is not None:
        conditions.append(_AFTER[sort].format(param(after[0]), param(after[1])))
    key, direction = _SORT_KEY[sort]
    # The page size is part of the statement's text, not a parameter: with
    # `LIMIT $n` PostgreSQL's cached generic plan cannot know the page is small
    # (it hash-joins every variant), so it plans anew on every execution, which
    # costs about as much as running the query. An int formatted with `:d`
    # cannot carry SQL, and page sizes are few, so asyncpg's statement cache
    # still holds every shape in use.
    sql = f"""
        WITH p AS (
            SELECT {_PRODUCT_COLUMNS}, {key} AS sort_key FROM products
            WHERE {" AND ".join(conditions)}
            ORDER BY {_ORDER_BY[sort]}
            LIMIT {int(limit):d}
        )
        SELECT {_DOCUMENT_COLUMNS}, r.revision
        FROM (SELECT revision FROM catalog_revision LIMIT 1) AS r
        LEFT JOIN (p {_DOCUMENT_VARIANTS}) ON true
        ORDER BY p.sort_key {direction}, p.id {direction}, v.position, v.sku
    """  # noqa: S608 - fixed fragments only; every value is a $n parameter
    revision, documents = _product_documents(await conn.fetch(sql, *params))
    assert revision is not None  # the revision's row is always there
    return revision, documents


async def get_product_document(
    conn: Connection, *, product_id: UUID | None = None, slug: str | None = None
) -> ProductDocument | None:
    """A live product by id or by slug, with its variants."""
    if product_id is not None:
        rows = await conn.fetch(
            f"""
            SELECT {_DOCUMENT_COLUMNS}, NULL::bigint
            FROM (SELECT {_PRODUCT_COLUMNS}, NULL AS sort_key FROM products
                  WHERE id = $1 AND archived_at IS NULL) p {_DOCUMENT_VARIANTS}
            ORDER BY v.position, v.sku
            """,  # noqa: S608 - fixed fragments only
            product_id,
        )
    else:
        rows = await conn.fetch(
            f"""
            SELECT {_DOCUMENT_COLUMNS}, NULL::bigint
            FROM (SELECT {_PRODUCT_COLUMNS}, NULL AS sort_key FROM products
                  WHERE slug = $1 AND archived_at IS NULL) p {_DOCUMENT_VARIANTS}
            ORDER BY v.position, v.sku
            """,  # noqa: S608 - fixed fragments only
            slug,
        )
    _, documents = _product_documents(rows)
    return documents[0][0] if documents else None


def _product_documents(
    rows: Sequence[asyncpg.Record],
) -> tuple[int | None, list[tuple[ProductDocument, Any]]]:
    documents: list[tuple[ProductDocument, Any]] = []
    document: ProductDocument | None = None
    revision: int | None = rows[0][-1] if rows else None
    for (
        product_id,
        slug,
        name,
        description,
        category,
        created_at,
        updated_at,
        sort_key,
        sku,
        variant_name,
        price_minor,
        currency,
        available,
        _revision,
    ) in rows:
        if product_id is None:  # an empty page's row
            continue
        if document is None or document["id"] != product_id:
            document = {
                "id": product_id,
                "slug": slug,
                "name": name,
                "description": description,
                "category": category,
                "variants": [],
                "created_at": created_at,
                "updated_at": updated_at,
            }
            documents.append((document, sort_key))
        if sku is not None:
            document["variants"].append(
                {
                    "sku": sku,
                    "name": variant_name,
                    "price": {"amount": amount_text(price_minor, currency), "currency": currency},
                    "available": available,
                }
            )
    return revision, documents


async def get_live_stock(conn: Connection, skus: Sequence[str]) -> tuple[int, list[int]]:
    """The catalog revision and the available stock of these SKUs, in their order,
    in one statement (one snapshot): the revision moves, in the same transaction,
    with every change to what a page shows but stock (migration 0005's triggers),
    so a page read at this revision, with these counts, is the page as it is now.
    An unknown SKU is left out (it cannot be, at the revision that listed it)."""
    row = await conn.fetchrow(
        """
        SELECT (SELECT revision FROM catalog_revision) AS revision,
               ARRAY(SELECT v.on_hand - v.reserved
                     FROM unnest($1::text[]) WITH ORDINALITY AS s(sku, n)
                     JOIN variants v USING (sku)
                     ORDER BY s.n) AS available
        """,
        list(skus),
    )
    assert row is not None
    return row["revision"], row["available"]


async def get_product_view(conn: Connection, product_id: UUID) -> ProductView | None:
    """A live product with its variants, as the admin's writes answer it."""
    row = await conn.fetchrow(
        f"""
        SELECT page.*, ({_VARIANTS_JSON}) AS variants
        FROM (SELECT {_PRODUCT_COLUMNS} FROM products
              WHERE id = $1 AND archived_at IS NULL) page
        """,  # noqa: S608 - fixed fragments only
        product_id,
    )
    return None if row is None else _product_view(row)


def _product_view(row: asyncpg.Record) -> ProductView:
    return ProductView(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        description=row["description"],
        category=row["category_slug"],
        variants=[
            VariantView(
                sku=v["sku"],
                name=v["name"],
                price=Money.from_minor(v["price_minor"], v["currency"]),
                available=v["available"],
            )
            for v in row["variants"]
        ],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        min_price_minor=row["min_price_minor"],
    )


async def get_variants(conn: Connection, skus: Sequence[str]) -> list[VariantSnapshot]:
    rows = await conn.fetch(
        """
        SELECT v.sku, v.product_id, p.name AS product_name, v.name AS variant_name,
               v.price_minor, v.currency, v.on_hand - v.reserved AS available,
               v.archived_at IS NULL AND p.archived_at IS NULL AS sellable
        FROM variants v JOIN products p ON p.id = v.product_id
        WHERE v.sku = ANY($1::text[])
        """,
        list(skus),
    )
    return [
        VariantSnapshot(
            sku=r["sku"],
            product_id=r["product_id"],
            product_name=r["product_name"],
            variant_name=r["variant_name"],
            price=Money.from_minor(r["price_minor"], r["currency"]),
            available=r["available"],
            sellable=r["sellable"],
        )
        for r in rows
    ]


def variant_snapshots_sql(skus: str) -> str:
    """A part for another feature's statement: the variants whose SKU is in the
    `text[]` expression `skus`, as one jsonb array (read by `variant_snapshots`)."""
    return f"""
        (SELECT coalesce(jsonb_agg(jsonb_build_array(
                    v.sku, v.product_id, p.name, v.name, v.price_minor, v.currency,
                    v.on_hand - v.reserved, v.archived_at IS NULL AND p.archived_at IS NULL
                )), '[]'::jsonb)
         FROM variants v JOIN products p ON p.id = v.product_id
         WHERE v.sku = ANY({skus}))
    """  # noqa: S608 - a fixed part around the caller's fixed expression, no values


def variant_snapshots(raw: list[list[Any]]) -> list[VariantSnapshot]:
    """The snapshots of a `variant_snapshots_sql` part."""
    return [
        VariantSnapshot(
            sku=sku,
            product_id=UUID(product_id),
            product_name=product_name,
            variant_name=variant_name,
            price=Money.from_minor(price_minor, currency),
            available=available,
            sellable=sellable,
        )
        for (
            sku,
            product_id,
            product_name,
            variant_name,
            price_minor,
            currency,
            available,
            sellable,
        ) in raw
    ]


# ---------------------------------------------------------------- stock


def reserve_lock_sql(
    p: Params, skus: Sequence[str], quantities: Sequence[int], *, only_if: str = "true"
) -> str:
    """The first CTEs of a statement that reserves stock all or nothing (this
    module's `reserve` or another feature's statement), when the SQL condition
    `only_if` holds: `stock_locked` locks the variants in ascending SKU order
    (so overlapping reservations queue instead of deadlocking) and holds each
    one's available stock and sellable flag as of the lock (the newest row: a
    lock that waited re-reads it); `stock_available` says whether every line
    can be had (`ALL_AVAILABLE`). `skus` must be sorted. Follow with
    `reserve_take_sql`.
    """
    skus_param, quantities_param = p.array(list(skus), "text[]"), p.array(list(quantities), "int[]")
    return f"""
        stock_locked AS MATERIALIZED (
            SELECT v.sku, l.qty, v.on_hand - v.reserved AS available,
                   v.archived_at IS NULL AND p.archived_at IS NULL AS sellable
            FROM variants v
            JOIN unnest({skus_param}, {quantities_param}) AS l(sku, qty)
                USING (sku)
            JOIN products p ON p.id = v.product_id
            WHERE {only_if}
            ORDER BY v.sku
            FOR NO KEY UPDATE OF v
        ), stock_available AS (
            SELECT count(*) FILTER (WHERE sellable AND available >= qty)
                   = cardinality({skus_param}) AS every_line
            FROM stock_locked
        )
    """  # noqa: S608 - fixed text around placeholders, no values


# Whether every line of a `reserve_lock_sql` part can be had.
ALL_AVAILABLE = "(SELECT every_line FROM stock_available)"


def reserve_take_sql(*, only_if: str = "true") -> str:
    """The CTE `stock_reserved` that takes the stock locked by `reserve_lock_sql`,
    each line by a conditional UPDATE, only when every line can be had and the
    SQL condition `only_if` (say, "the checkout attempt was inserted") holds."""
    return f"""
        stock_reserved AS (
            UPDATE variants v
            SET reserved = v.reserved + s.qty, updated_at = now()
            FROM stock_locked s
            WHERE v.sku = s.sku AND v.on_hand - v.reserved >= s.qty
              AND {ALL_AVAILABLE} AND {only_if}
            RETURNING v.sku
        )
    """  # noqa: S608 - fixed text, no values


# The outcome of a reservation (`reserve_lock_sql` and `reserve_take_sql`), as
# one jsonb value (read by `reserve_outcome`).
RESERVE_OUTCOME = """
    (SELECT coalesce(jsonb_agg(jsonb_build_array(
                s.sku, s.sellable AND s.available >= s.qty, r.sku IS NOT NULL)), '[]'::jsonb)
     FROM stock_locked s LEFT JOIN stock_reserved r USING (sku))
"""


def reserve_outcome(skus: Sequence[str], raw: list[list[Any]]) -> tuple[list[str], list[str]]:
    """(the SKUs reserved, the SKUs short) from a `RESERVE_OUTCOME`; nothing was
    reserved when any is short (unknown, unsellable or not enough available)."""
    enough = {sku for sku, has_enough, _ in raw if has_enough}
    reserved = [sku for sku, _, was_reserved in raw if was_reserved]
    return reserved, [sku for sku in skus if sku not in enough]


async def reserve(
    conn: Connection, skus: Sequence[str], quantities: Sequence[int]
) -> list[list[Any]]:
    """Reserve every line or none, in one statement (see `reserve_lock_sql`); returns
    the `RESERVE_OUTCOME`. `skus` must be sorted."""
    p = Params()
    outcome: list[list[Any]] = await conn.fetchval(
        f"WITH {reserve_lock_sql(p, skus, quantities)}, {reserve_take_sql()} "
        f"SELECT {RESERVE_OUTCOME}",
        *p.values,
    )
    return outcome


async def release(conn: Connection, skus: Sequence[str], quantities: Sequence[int]) -> list[str]:
    """Give reserved units back; the SKUs released (never below zero reserved)."""
    rows = await conn.fetch(
        """
        WITH locked AS MATERIALIZED (
            SELECT v.sku, l.qty
            FROM variants v JOIN unnest($1::text[], $2::int[]) AS l(sku, qty) USING (sku)
            ORDER BY v.sku
            FOR NO KEY UPDATE OF v
        )
        UPDATE variants v
        SET reserved = v.reserved - locked.qty, updated_at = now()
        FROM locked
        WHERE v.sku = locked.sku AND v.reserved >= locked.qty
        RETURNING v.sku
        """,
        list(skus),
        list(quantities),
    )
    return [r["sku"] for r in rows]


def sell_sql(
    p: Params,
    skus: Sequence[str],
    quantities: Sequence[int],
    *,
    reason: str,
    only_if: str = "true",
) -> str:
    """The CTEs of a statement (this one's or another feature's) that turn
    reserved units into sold ones, with a ledger row each, when the SQL
    condition `only_if` holds; the rows are locked in ascending SKU order.
    Select `SALE_OUTCOME` (the SKUs sold). `skus` must be sorted."""
    return f"""
        sale_locked AS MATERIALIZED (
            SELECT v.sku, l.qty
            FROM variants v
            JOIN unnest({p.array(list(skus), "text[]")}, {p.array(list(quantities), "int[]")})
                AS l(sku, qty) USING (sku)
            WHERE {only_if}
            ORDER BY v.sku
            FOR NO KEY UPDATE OF v
        ), sale_sold AS (
            UPDATE variants v
            SET on_hand = v.on_hand - s.qty, reserved = v.reserved - s.qty,
                updated_at = now()
            FROM sale_locked s
            WHERE v.sku = s.sku AND v.reserved >= s.qty
            RETURNING v.sku, s.qty, v.on_hand
        ), sale_ledger AS (
            INSERT INTO inventory_adjustments (sku, delta, reason, on_hand_after)
            SELECT sku, -qty, {p(reason)}, on_hand FROM sale_sold
        )
    """  # noqa: S608 - fixed text around placeholders, no values


# The SKUs a `sell_sql` statement sold, as one text[] value.
SALE_OUTCOME = "(SELECT coalesce(array_agg(sku), '{}'::text[]) FROM sale_sold)"


async def sell(
    conn: Connection, skus: Sequence[str], quantities: Sequence[int], *, reason: str
) -> list[str]:
    """Turn reserved units into sold ones, with a ledger row each; the SKUs sold."""
    p = Params()
    sold: list[str] = await conn.fetchval(
        f"WITH {sell_sql(p, skus, quantities, reason=reason)} SELECT {SALE_OUTCOME}",
        *p.values,
    )
    return sold


async def restock(
    conn: Connection,
    skus: Sequence[str],
    quantities: Sequence[int],
    *,
    reason: str,
    actor_id: UUID | None,
) -> list[str]:
    """Add units to on-hand stock, with a ledger row each; the SKUs restocked."""
    rows = await conn.fetch(
        """
        WITH locked AS MATERIALIZED (
            SELECT v.sku, l.qty
            FROM variants v JOIN unnest($1::text[], $2::int[]) AS l(sku, qty) USING (sku)
            ORDER BY v.sku
            FOR NO KEY UPDATE OF v
        ), restocked AS (
            UPDATE variants v
            SET on_hand = v.on_hand + locked.qty, updated_at = now()
            FROM locked
            WHERE v.sku = locked.sku
            RETURNING v.sku, locked.qty, v.on_hand
        ), ledger AS (
            INSERT INTO inventory_adjustments (sku, delta, reason, actor_id, on_hand_after)
            SELECT sku, qty, $3, $4, on_hand FROM restocked
        )
        SELECT sku FROM restocked
        """,
        list(skus),
        list(quantities),
        reason,
        actor_id,
    )
    return [r["sku"] for r in rows]


async def adjust_on_hand(
    conn: Connection, *, sku: str, delta: int, reason: str, actor_id: UUID | None
) -> StockLevel | None:
    """Change on-hand stock by `delta` unless it would drop below what is reserved
    (or exceed the stock limit), with a ledger row; None when refused or unknown."""
    row = await conn.fetchrow(
        """
        WITH adjusted AS (
            UPDATE variants
            SET on_hand = on_hand + $2, updated_at = now()
            WHERE sku = $1 AND on_hand + $2::bigint BETWEEN reserved AND $5
            RETURNING sku, on_hand, reserved
        ), ledger AS (
            INSERT INTO inventory_adjustments (sku, delta, reason, actor_id, on_hand_after)
            SELECT sku, $2, $3, $4, on_hand FROM adjusted
        )
        SELECT sku, on_hand, reserved FROM adjusted
        """,
        sku,
        delta,
        reason,
        actor_id,
        MAX_STOCK,
    )
    return None if row is None else StockLevel(row["sku"], row["on_hand"], row["reserved"])


async def get_stock_level(conn: Connection, sku: str) -> StockLevel | None:
    row = await conn.fetchrow("SELECT sku, on_hand, reserved FROM variants WHERE sku = $1", sku)
    return None if row is None else StockLevel(row["sku"], row["on_hand"], row["reserved"])


# ---------------------------------------------------------------- demo catalog


async def insert_demo_catalog(
    conn: Connection,
    *,
    slugs: Sequence[str],
    names: Sequence[str],
    descriptions: Sequence[str],
    categories: Sequence[str],
    min_prices_minor: Sequence[int],
    variant_slugs: Sequence[str],
    skus: Sequence[str],
    variant_names: Sequence[str],
    prices_minor: Sequence[int],
    currency: str,
    stocks: Sequence[int],
    positions: Sequence[int],
) -> tuple[int, int]:
    """Insert, in one statement, the products whose slug is free, their variants
    and the initial-stock ledger rows; how many products and variants were new.

    Variants attach only to products inserted here, so a product that already
    existed (an earlier run, or a shop's own product with that slug) is untouched.
    """
    row = await conn.fetchrow(
        """
        WITH new_products AS (
            INSERT INTO products (slug, name, description, category_slug, min_price_minor,
                                  created_at, updated_at)
            SELECT slug, name, description, category, min_price, now, now
            FROM (SELECT *, clock_timestamp() AS now
                  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                       AS u(slug, name, description, category, min_price)) l
            ON CONFLICT (slug) DO NOTHING
            RETURNING id, slug
        ), new_variants AS (
            INSERT INTO variants (sku, product_id, name, price_minor, currency, on_hand, position)
            SELECT l.sku, p.id, l.name, l.price_minor, $11, l.stock, l.position
            FROM unnest($6::text[], $7::text[], $8::text[], $9::bigint[], $10::int[], $12::int[])
                 AS l(slug, sku, name, price_minor, stock, position)
            JOIN new_products p USING (slug)
            ON CONFLICT (sku) DO NOTHING
            RETURNING sku, on_hand
        ), ledger AS (
            INSERT INTO inventory_adjustments (sku, delta, reason, on_hand_after)
            SELECT sku, on_hand, 'initial stock (demo catalog)', on_hand
            FROM new_variants WHERE on_hand > 0
        )
        SELECT (SELECT count(*) FROM new_products) AS products,
               (SELECT count(*) FROM new_variants) AS variants
        """,
        list(slugs),
        list(names),
        list(descriptions),
        list(categories),
        list(min_prices_minor),
        list(variant_slugs),
        list(skus),
        list(variant_names),
        list(prices_minor),
        list(stocks),
        currency,
        list(positions),
    )
    assert row is not None
    return row["products"], row["variants"]
