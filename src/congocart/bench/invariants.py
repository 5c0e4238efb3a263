"""What a checkout run must leave behind, read straight from the bench database.

Checked after every checkout run: orders created = successful responses,
each order's lines = what its cart held, stock (on hand minus reserved)
down by exactly the ordered quantities and nothing else, every order with
exactly one captured payment. The tables are the catalog's `variants` and
commerce's `orders` and `payments`; the bench reads them, never writes.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

from congocart.bench.scenarios import PlacedOrder
from congocart.core.db import Connection


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class StoreState:
    orders: int
    available: dict[str, int]  # sku -> on_hand - reserved


async def read_state(conn: Connection) -> StoreState:
    orders = await conn.fetchval("SELECT count(*) FROM orders")
    rows = await conn.fetch("SELECT sku, on_hand - reserved AS available FROM variants")
    return StoreState(orders=orders, available={row["sku"]: row["available"] for row in rows})


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:5])
    return f"{shown} (+{len(items) - 5} more)" if len(items) > 5 else shown


def compare(before: StoreState, after: StoreState, placed: list[PlacedOrder]) -> list[Check]:
    """The checks that need no further query: order count, lines, stock."""
    checks: list[Check] = []
    created = after.orders - before.orders
    checks.append(
        Check(
            "orders created = successful responses",
            created == len(placed),
            f"{created} orders created, {len(placed)} checkouts answered 201",
        )
    )
    wrong_lines = [o.id for o in placed if o.order_lines != o.cart_lines]
    checks.append(
        Check(
            "order lines = cart lines",
            not wrong_lines,
            f"{len(wrong_lines)} orders differ from their cart: {_examples(wrong_lines)}"
            if wrong_lines
            else f"{len(placed)} orders match their carts",
        )
    )
    ordered: Counter[str] = Counter()
    for order in placed:
        ordered.update(order.cart_lines)
    wrong_stock = []
    for sku in sorted(before.available.keys() | after.available.keys()):
        taken = before.available.get(sku, 0) - after.available.get(sku, 0)
        if taken != ordered.get(sku, 0):
            wrong_stock.append(f"{sku}: down {taken}, ordered {ordered.get(sku, 0)}")
    checks.append(
        Check(
            "stock down by exactly the ordered quantities",
            not wrong_stock,
            _examples(wrong_stock)
            if wrong_stock
            else f"{sum(ordered.values())} units over {len(ordered)} SKUs",
        )
    )
    return checks


async def check_payments(conn: Connection, placed: list[PlacedOrder]) -> Check:
    ids = [uuid.UUID(order.id) for order in placed]
    rows = await conn.fetch(
        """
        SELECT o.id, count(p.*) FILTER (WHERE p.status = 'captured') AS captured,
               EXISTS (SELECT 1 FROM orders x WHERE x.id = o.id) AS exists
        FROM unnest($1::uuid[]) AS o(id)
        LEFT JOIN payments p ON p.order_id = o.id
        GROUP BY o.id
        """,
        ids,
    )
    missing = [str(row["id"]) for row in rows if not row["exists"]]
    wrong = [f"{row['id']}: {row['captured']}" for row in rows if row["captured"] != 1]
    ok = not missing and not wrong
    if ok:
        detail = f"{len(ids)} orders, one captured payment each"
    else:
        detail = f"{len(missing)} orders missing; captured payments != 1: {_examples(wrong)}"
    return Check("every order has exactly one captured payment", ok, detail)


async def verify(
    conn: Connection, before: StoreState, placed: list[PlacedOrder]
) -> tuple[StoreState, list[Check]]:
    after = await read_state(conn)
    checks = compare(before, after, placed)
    checks.append(await check_payments(conn, placed))
    return after, checks
