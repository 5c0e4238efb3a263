"""Concurrent changes of one order, on a committed database with a real pool."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.config import Settings
from congocart.core.db import Database
from congocart.core.security import Passwords, load_token_keys
from congocart.identity import service as identity
from congocart.main import create_app
from congocart.orders import service
from congocart.orders.domain import Order
from tests.orders.conftest import place_order_on


async def committed_user(db: Database, settings: Settings, *roles: str) -> dict[str, str]:
    async with db.transaction() as tx:
        user = await identity.register_user(
            tx,
            email=f"user-{uuid.uuid4().hex[:12]}@example.com",
            password="correct horse battery staple",
            passwords=Passwords.from_settings(settings),
            roles=frozenset(roles or ("customer",)),
        )
        token = await identity.issue_access_token_for(
            tx, user_id=user.id, keys=load_token_keys(settings)
        )
    return {"Authorization": f"Bearer {token}", "X-User-Id": str(user.id)}


async def test_ten_concurrent_cancels_restock_once_and_void_once(
    committed_db: Database, settings: Settings
) -> None:
    gateway = SandboxGateway(committed_db)
    app = create_app(settings, database=committed_db)
    app.state.payments = gateway
    owner = await committed_user(committed_db, settings)
    staff = await committed_user(committed_db, settings, "staff")
    async with committed_db.transaction() as tx:
        order: Order = await place_order_on(
            tx,
            gateway,
            user_id=uuid.UUID(owner["X-User-Id"]),
            prices=("10.00", "3.00"),
            quantity=2,
            stock=7,
        )
    skus = [item.sku for item in order.items]

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/orders/{order.id}/cancel",
                    headers=owner if i % 2 else staff,
                )
                for i in range(10)
            )
        )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 9
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"invalid_transition"}
    async with committed_db.acquire() as conn:
        stock = await conn.fetch(
            "SELECT sku, on_hand, reserved FROM variants WHERE sku = ANY($1) ORDER BY sku", skus
        )
        assert {(r["on_hand"], r["reserved"]) for r in stock} == {(7, 0)}
        restocks = await conn.fetchval(
            "SELECT count(*) FROM inventory_adjustments WHERE sku = ANY($1) AND delta > 0"
            " AND reason = 'order cancelled'",
            skus,
        )
        assert restocks == 2  # one ledger row per SKU, once
        assert await conn.fetchval("SELECT count(*) FROM refunds") == 1
        reversals = await conn.fetch("SELECT kind, amount_minor FROM sandbox_refunds")
        assert [tuple(r) for r in reversals] == [("void", order.total.to_minor())]
        cancelled = await conn.fetchval(
            "SELECT count(*) FROM order_events WHERE order_id = $1 AND to_status = 'cancelled'",
            order.id,
        )
        assert cancelled == 1
        refund_id = await conn.fetchval("SELECT id FROM refunds")

    # The outbox job that guarantees the void runs later and changes nothing more.
    async with committed_db.transaction() as tx:
        await service.settle_refund(tx, gateway=gateway, refund_id=refund_id, void=True)
    async with committed_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM sandbox_refunds") == 1
        assert await conn.fetchval("SELECT status FROM payments") == "voided"


async def test_concurrent_refunds_never_give_back_more_than_the_total(
    committed_db: Database, settings: Settings
) -> None:
    gateway = SandboxGateway(committed_db)
    app = create_app(settings, database=committed_db)
    app.state.payments = gateway
    staff = await committed_user(committed_db, settings, "staff")
    async with committed_db.transaction() as tx:
        order = await place_order_on(
            tx, gateway, user_id=None, prices=("10.00",), quantity=1, shipping="0.00"
        )
    assert order.total.to_minor() == 1200
    body = {"amount": {"amount": "5.00", "currency": "USD"}, "reason": "race"}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        responses = await asyncio.gather(
            *(
                client.post(f"/api/v1/admin/orders/{order.id}/refunds", json=body, headers=staff)
                for _ in range(8)
            )
        )

    # 12.00 holds two refunds of 5.00; the third and later ones exceed what remains.
    assert sorted(r.status_code for r in responses) == [201, 201] + [422] * 6
    async with committed_db.acquire() as conn:
        assert await conn.fetchval("SELECT refunded_minor FROM orders") == 1000
        assert await conn.fetchval("SELECT sum(amount_minor) FROM sandbox_refunds") == 1000
        assert await conn.fetchval("SELECT status FROM payments") == "partially_refunded"
        assert await conn.fetchval("SELECT status FROM orders") == "paid"
