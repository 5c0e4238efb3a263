"""Deliveries by real workers to a real HTTP receiver on 127.0.0.1 (committed data)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from congocart.adapters.sandbox_gateway import SandboxGateway
from congocart.adapters.webhook_sender import HttpxWebhookSender, PublicOnlyBackend
from congocart.core import jobs
from congocart.core.db import Connection, Database
from congocart.webhooks import service, tasks
from congocart.webhooks.domain import SIGNATURE_HEADER, WebhookSendFailed, sign
from congocart.worker import Worker
from tests.core.conftest import eventually
from tests.orders.conftest import place_order_on
from tests.webhooks.conftest import Receiver


def webhook_registry() -> jobs.Registry:
    registry = jobs.Registry()
    registry.register(service.FAN_OUT_JOB, tasks.fan_out)
    registry.register(service.DELIVER_JOB, tasks.deliver)
    return registry


@asynccontextmanager
async def running_worker(db: Database) -> AsyncIterator[Worker]:
    worker = Worker(db, registry=webhook_registry(), poll_interval=0.05, concurrency=4)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=15)


async def subscribe(db: Database, receiver: Receiver, *events: str) -> uuid.UUID:
    async with db.transaction() as tx:
        created = await service.create_webhook(tx, url=receiver.url, events=list(events))
    receiver.secret = created.secret
    return created.webhook.id


async def delivery(db: Database, webhook_id: uuid.UUID) -> asyncpg.Record:
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = $1", webhook_id
        )
        assert row is not None
        return row


@pytest.mark.usefixtures("installed_sender")
async def test_a_paid_order_is_delivered_signed_to_the_subscribed_receiver(
    committed_db: Database, receiver: Receiver
) -> None:
    webhook_id = await subscribe(committed_db, receiver, "order.paid")
    async with committed_db.transaction() as tx:
        order = await place_order_on(tx, SandboxGateway(committed_db), user_id=None)

    async with running_worker(committed_db):
        await eventually(lambda: _delivered(committed_db, webhook_id))

    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.signature_valid
    assert got.headers["content-type"] == "application/json"
    assert got.headers["congocart-event"] == "order.paid"
    event = got.event
    assert event["event"] == "order.paid"
    assert got.headers["congocart-event-id"] == event["id"]
    data = event["data"]
    assert isinstance(data, dict)
    assert data["id"] == str(order.id)
    assert data["number"] == order.number
    row = await delivery(committed_db, webhook_id)
    assert (row["status"], row["attempt"], row["status_code"]) == ("delivered", 1, 200)
    assert str(row["event_id"]) == event["id"]
    assert row["next_retry_at"] is None


async def _delivered(db: Database, webhook_id: uuid.UUID) -> bool:
    async with db.acquire() as conn:
        status = await conn.fetchval(
            "SELECT status FROM webhook_deliveries WHERE webhook_id = $1", webhook_id
        )
    return status == "delivered"


@pytest.mark.usefixtures("installed_sender")
async def test_a_failing_receiver_is_retried_with_back_off_and_the_retry_is_recorded(
    committed_db: Database, receiver: Receiver
) -> None:
    receiver.statuses = [503]
    webhook_id = await subscribe(committed_db, receiver, "order.cancelled")
    async with committed_db.transaction() as tx:
        event_id = await service.publish(tx, event="order.cancelled", data={"id": "o-1"})

    async def failed_once() -> bool:
        row = await delivery(committed_db, webhook_id)
        return bool(row["attempt"] == 1)

    async with running_worker(committed_db):
        await eventually(failed_once)
        first = await delivery(committed_db, webhook_id)
        assert (first["status"], first["status_code"]) == ("pending", 503)
        assert first["next_retry_at"] is not None
        assert first["next_retry_at"] > first["updated_at"]
        assert "503" in first["last_error"]
        await eventually(lambda: _delivered(committed_db, webhook_id))

    final = await delivery(committed_db, webhook_id)
    assert (final["status"], final["attempt"], final["status_code"]) == ("delivered", 2, 200)
    assert [r.event["id"] for r in receiver.received] == [str(event_id)] * 2
    assert receiver.received[0].body == receiver.received[1].body
    assert all(r.signature_valid for r in receiver.received)
    assert [r.headers["congocart-delivery-attempt"] for r in receiver.received] == ["1", "2"]


async def test_a_delivery_that_keeps_failing_ends_dead_after_its_last_attempt(
    conn: Connection, receiver: Receiver, sender: HttpxWebhookSender
) -> None:
    receiver.statuses = [500, 500, 500]
    created = await service.create_webhook(conn, url=receiver.url, events=["order.paid"])
    receiver.secret = created.secret
    await service.publish(conn, event="order.paid", data={})
    delivery_id = await conn.fetchval("SELECT id FROM webhook_deliveries")

    statuses = [
        await service.deliver(conn, delivery_id=delivery_id, sender=sender, max_attempts=3)
        for _ in range(4)
    ]
    assert statuses == ["pending", "pending", "dead", None]
    row = await conn.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", delivery_id)
    assert (row["status"], row["attempt"], row["status_code"], row["next_retry_at"]) == (
        "dead",
        3,
        500,
        None,
    )
    retry_jobs = await conn.fetch(
        "SELECT dedupe_key, run_at > now() AS later FROM jobs WHERE kind = $1 ORDER BY run_at",
        service.DELIVER_JOB,
    )
    assert [r["dedupe_key"].rsplit(":", 1)[1] for r in retry_jobs] == ["2", "3"]
    assert all(r["later"] for r in retry_jobs)


async def test_an_unreachable_receiver_is_recorded_and_retried(
    conn: Connection, sender: HttpxWebhookSender
) -> None:
    # A port nothing listens on: bind one, then close it.
    server = await asyncio.start_server(lambda r, w: None, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    await service.create_webhook(conn, url=f"http://127.0.0.1:{port}/h", events=["order.paid"])
    await service.publish(conn, event="order.paid", data={})
    delivery_id = await conn.fetchval("SELECT id FROM webhook_deliveries")
    status = await service.deliver(conn, delivery_id=delivery_id, sender=sender)
    row = await conn.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", delivery_id)
    assert status == "pending"
    assert row["status_code"] is None
    assert row["attempt"] == 1
    assert "ConnectError" in row["last_error"]
    assert row["next_retry_at"] is not None


async def test_production_refuses_to_deliver_to_loopback_targets(receiver: Receiver) -> None:
    sender = HttpxWebhookSender(block_private_targets=True)
    try:
        with pytest.raises(WebhookSendFailed, match="non-public"):
            await sender.send(url=receiver.url, body=b"{}", headers={})
        with pytest.raises(WebhookSendFailed, match="non-public"):
            await sender.send(url=f"http://localhost:{receiver.port}/", body=b"{}", headers={})
    finally:
        await sender.aclose()
    assert receiver.received == []


async def test_production_connects_to_the_address_it_vetted_without_a_second_lookup(
    receiver: Receiver,
) -> None:
    # A name no DNS knows, "resolved" once by the backend: the request can only
    # reach the receiver through the address that was vetted.
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    backend = PublicOnlyBackend(resolve=resolve, allowed=lambda address: True)
    sender = HttpxWebhookSender(block_private_targets=True, backend=backend)
    try:
        url = f"http://hooks.rebind.invalid:{receiver.port}/"
        signed = {SIGNATURE_HEADER: sign(receiver.secret, timestamp=int(time.time()), body=b"{}")}
        assert await sender.send(url=url, body=b"{}", headers=signed) == 200
    finally:
        await sender.aclose()
    assert lookups == ["hooks.rebind.invalid"]
    assert [r.headers["host"] for r in receiver.received] == [
        f"hooks.rebind.invalid:{receiver.port}"
    ]


async def test_production_refuses_a_name_with_any_non_public_address(receiver: Receiver) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]  # one public, one loopback

    sender = HttpxWebhookSender(
        block_private_targets=True, backend=PublicOnlyBackend(resolve=resolve)
    )
    try:
        with pytest.raises(WebhookSendFailed, match="non-public"):
            await sender.send(url=f"http://mixed.invalid:{receiver.port}/", body=b"{}", headers={})
    finally:
        await sender.aclose()
    assert receiver.received == []


async def test_events_nobody_subscribed_to_enqueue_nothing(conn: Connection) -> None:
    await service.publish(conn, event="order.delivered", data={})
    assert await conn.fetchval("SELECT count(*) FROM webhook_deliveries") == 0
    assert (
        await conn.fetchval("SELECT count(*) FROM jobs WHERE kind = $1", service.FAN_OUT_JOB) == 0
    )


async def test_the_fan_out_gives_each_delivery_one_job_however_often_it_runs(
    conn: Connection,
) -> None:
    for _ in range(3):
        await service.create_webhook(conn, url="https://example.com/h", events=["order.paid"])
    event_id = await service.publish(conn, event="order.paid", data={})
    assert await service.fan_out(conn, event_id=event_id) == 3
    await service.fan_out(conn, event_id=event_id)
    count = await conn.fetchval("SELECT count(*) FROM jobs WHERE kind = $1", service.DELIVER_JOB)
    assert count == 3


async def test_publishing_an_unknown_event_is_a_programming_error(conn: Connection) -> None:
    with pytest.raises(ValueError, match="unknown webhook event"):
        await service.publish(conn, event="order.lost", data={})
