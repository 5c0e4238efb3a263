"""The invariant checks' SQL runs against the real, migrated schema."""

from __future__ import annotations

import uuid

from congocart.bench.invariants import check_payments, read_state
from congocart.bench.scenarios import PlacedOrder
from congocart.core.db import Connection


async def test_store_state_reads_orders_and_available_stock(conn: Connection) -> None:
    state = await read_state(conn)
    assert state.orders == await conn.fetchval("SELECT count(*) FROM orders")
    assert len(state.available) == await conn.fetchval("SELECT count(*) FROM variants")


async def test_payment_check_flags_an_order_the_database_does_not_have(conn: Connection) -> None:
    ghost = PlacedOrder(id=str(uuid.uuid4()), cart_lines={"A": 1}, order_lines={"A": 1})
    check = await check_payments(conn, [ghost])
    assert not check.ok
    assert "1 orders missing" in check.detail


async def test_payment_check_of_no_orders_holds(conn: Connection) -> None:
    check = await check_payments(conn, [])
    assert check.ok
