"""api-contract.md, "Outbound webhooks": subscriptions, deliveries, signatures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from congocart.config import Settings
from congocart.core import jobs
from congocart.core.db import Database
from congocart.webhooks import service, tasks
from congocart.worker import Worker
from tests.acceptance.conftest import (
    API,
    Roles,
    admin_headers,
    assert_page,
    assert_problem,
    check_out,
    committed_product,
    guest_cart_with,
    new_cart,
    new_sku,
    place_order,
)
from tests.webhooks.conftest import Receiver

DELIVERY_FIELDS = {"event_id", "event", "status_code", "attempt", "next_retry_at"}
SIGNATURE = re.compile(r"^t=(\d+),v1=([0-9a-f]{64})$")


async def test_an_admin_creates_a_webhook_201_and_sees_its_secret_once(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    events = ["order.paid", "order.cancelled", "order.shipped", "order.refunded"]

    response = await client.post(
        f"{API}/admin/webhooks",
        json={"url": "https://hooks.example.com/congocart", "events": events},
        headers=roles.admin.headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert {"id", "url", "events", "secret"} <= body.keys()
    uuid.UUID(body["id"])
    assert body["url"] == "https://hooks.example.com/congocart"
    assert sorted(body["events"]) == sorted(events)
    assert isinstance(body["secret"], str)
    assert len(body["secret"]) >= 16
    deliveries = await client.get(
        f"{API}/admin/webhooks/{body['id']}/deliveries", headers=roles.admin.headers
    )
    assert body["secret"] not in deliveries.text


async def test_webhook_administration_is_admin_only_and_validated(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    body = {"url": "https://hooks.example.com/x", "events": ["order.paid"]}

    assert_problem(await client.post(f"{API}/admin/webhooks", json=body), 401)
    assert_problem(
        await client.post(f"{API}/admin/webhooks", json=body, headers=roles.staff.headers), 403
    )
    assert_problem(
        await client.post(
            f"{API}/admin/webhooks",
            json={**body, "events": ["order.exploded"]},
            headers=roles.admin.headers,
        ),
        422,
    )
    assert_problem(
        await client.post(
            f"{API}/admin/webhooks", json={**body, "url": "not a url"}, headers=roles.admin.headers
        ),
        422,
    )
    assert_problem(
        await client.get(
            f"{API}/admin/webhooks/{uuid.uuid4()}/deliveries", headers=roles.admin.headers
        ),
        404,
    )


async def test_deliveries_are_a_page_of_attempts_with_the_named_fields(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    created = await client.post(
        f"{API}/admin/webhooks",
        json={"url": "https://hooks.example.com/paid", "events": ["order.paid"]},
        headers=roles.admin.headers,
    )
    hook = created.json()
    await place_order(client, roles.admin, user=roles.customer)

    response = await client.get(
        f"{API}/admin/webhooks/{hook['id']}/deliveries", headers=roles.admin.headers
    )

    assert response.status_code == 200, response.text
    items = assert_page(response.json())
    assert len(items) == 1
    delivery = items[0]
    assert delivery.keys() >= DELIVERY_FIELDS
    uuid.UUID(delivery["event_id"])
    assert delivery["event"] == "order.paid"
    assert delivery["status_code"] is None
    assert delivery["attempt"] == 0


def webhook_registry() -> jobs.Registry:
    registry = jobs.Registry()
    registry.register(service.FAN_OUT_JOB, tasks.fan_out)
    registry.register(service.DELIVER_JOB, tasks.deliver)
    return registry


@asynccontextmanager
async def running_worker(db: Database) -> AsyncIterator[None]:
    worker = Worker(db, registry=webhook_registry(), poll_interval=0.05, concurrency=4)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=15)


async def wait_for_delivery(
    client: httpx.AsyncClient, admin: dict[str, str], hook_id: str, *, status_code: int
) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        response = await client.get(f"{API}/admin/webhooks/{hook_id}/deliveries", headers=admin)
        items = response.json()["items"]
        if items and items[0]["status_code"] == status_code:
            delivery: dict[str, Any] = items[0]
            return delivery
        if time.monotonic() > deadline:
            pytest.fail(f"no delivery answered {status_code}: {items}")
        await asyncio.sleep(0.05)


@pytest.mark.usefixtures("installed_sender")
async def test_an_order_event_is_delivered_signed_after_commit_and_retried_with_back_off(
    committed_client: httpx.AsyncClient,
    committed_db: Database,
    settings: Settings,
    receiver: Receiver,
) -> None:
    admin = await admin_headers(committed_db, settings)
    created = await committed_client.post(
        f"{API}/admin/webhooks",
        json={"url": receiver.url, "events": ["order.paid"]},
        headers=admin,
    )
    hook = created.json()
    receiver.secret = hook["secret"]
    receiver.statuses = [503]
    cart = await guest_cart_with(
        committed_client, await committed_product(committed_client, admin, stock=2)
    )
    order = (await check_out(committed_client, cart)).json()

    async with running_worker(committed_db):
        failed = await wait_for_delivery(committed_client, admin, hook["id"], status_code=503)
        delivered = await wait_for_delivery(committed_client, admin, hook["id"], status_code=200)

    assert failed["attempt"] == 1
    assert failed["next_retry_at"] is not None
    assert delivered["attempt"] == 2
    assert delivered["next_retry_at"] is None
    assert len(receiver.received) == 2
    for got in receiver.received:
        match = SIGNATURE.match(got.headers["congocart-signature"])
        assert match is not None, got.headers
        timestamp, signature = match.groups()
        expected = hmac.new(
            hook["secret"].encode(), f"{timestamp}.".encode() + got.body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(signature, expected)
        assert abs(int(timestamp) - time.time()) < 60
        event = orjson.loads(got.body)
        assert event["id"] == delivered["event_id"]
        assert event["event"] == "order.paid"
        assert event["data"]["id"] == order["id"]


async def test_a_rolled_back_change_publishes_nothing(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    hook = (
        await client.post(
            f"{API}/admin/webhooks",
            json={"url": "https://hooks.example.com/declined", "events": ["order.paid"]},
            headers=roles.admin.headers,
        )
    ).json()
    sku = await new_sku(client, roles.admin)
    cart = await new_cart(client, lines={sku: 1})

    assert (await check_out(client, cart, card="tok_chargeDeclined")).status_code == 402

    deliveries = await client.get(
        f"{API}/admin/webhooks/{hook['id']}/deliveries", headers=roles.admin.headers
    )
    assert deliveries.json()["items"] == []


async def test_paid_shipped_refunded_and_cancelled_orders_each_publish_their_event(
    client: httpx.AsyncClient, roles: Roles
) -> None:
    events = ["order.paid", "order.cancelled", "order.shipped", "order.refunded"]
    hook = (
        await client.post(
            f"{API}/admin/webhooks",
            json={"url": "https://hooks.example.com/all", "events": events},
            headers=roles.admin.headers,
        )
    ).json()
    shipped, _ = await place_order(client, roles.admin, user=roles.customer)
    cancelled, _ = await place_order(client, roles.admin, user=roles.customer)
    staff = roles.staff.headers
    assert (
        await client.post(f"{API}/admin/orders/{shipped['id']}/ship", headers=staff)
    ).status_code == 200
    assert (
        await client.post(
            f"{API}/admin/orders/{shipped['id']}/refunds", json={"reason": "lost"}, headers=staff
        )
    ).status_code == 201
    assert (
        await client.post(f"{API}/orders/{cancelled['id']}/cancel", headers=roles.customer.headers)
    ).status_code == 200

    response = await client.get(
        f"{API}/admin/webhooks/{hook['id']}/deliveries",
        params={"limit": 100},
        headers=roles.admin.headers,
    )

    published = sorted(d["event"] for d in assert_page(response.json()))
    assert published == sorted(
        ["order.paid", "order.paid", "order.shipped", "order.refunded", "order.cancelled"]
    )
    assert len({d["event_id"] for d in response.json()["items"]}) == 5
