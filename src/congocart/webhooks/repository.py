"""Webhooks SQL: subscriptions and their deliveries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from congocart.core.db import Connection, Params
from congocart.webhooks.domain import Delivery, Webhook


def _webhook(row: asyncpg.Record) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        events=tuple(row["events"]),
        active=row["active"],
        created_at=row["created_at"],
    )


async def insert_webhook(
    tx: Connection, *, url: str, events: Sequence[str], secret: str
) -> Webhook:
    row = await tx.fetchrow(
        """
        INSERT INTO webhooks (url, events, secret) VALUES ($1, $2, $3)
        RETURNING id, url, events, active, created_at
        """,
        url,
        list(events),
        secret,
    )
    assert row is not None
    return _webhook(row)


async def webhook_exists(conn: Connection, webhook_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT true FROM webhooks WHERE id = $1", webhook_id))


def insert_deliveries_sql(
    p: Params, *, name: str, event_id: UUID, event: str, payload: Mapping[str, Any], only_if: str
) -> str:
    """A CTE named `name`: one pending delivery of the event per active webhook
    subscribed to it, when the SQL condition `only_if` holds; it returns a row
    per delivery.

    The subscriptions are read in the publishing statement, so a webhook gets
    exactly the events that happened while it was subscribed.
    """
    event_name = p(event)
    return f"""
        {name} AS (
            INSERT INTO webhook_deliveries (webhook_id, event_id, event, payload, next_retry_at,
                                            created_at, updated_at)
            -- clock_timestamp(): "newest first" holds for events of one transaction too.
            SELECT id, {p(event_id)}, {event_name}, {p(dict(payload))}, now(),
                   clock_timestamp(), clock_timestamp()
            FROM webhooks
            WHERE active AND {event_name} = ANY(events) AND {only_if}
            ON CONFLICT (webhook_id, event_id) DO NOTHING
            RETURNING id
        )
    """  # noqa: S608 - fixed text around placeholders, no values


async def pending_deliveries_of_event(tx: Connection, event_id: UUID) -> list[UUID]:
    rows = await tx.fetch(
        """
        SELECT id FROM webhook_deliveries
        WHERE event_id = $1 AND status = 'pending' AND attempt = 0
        ORDER BY webhook_id
        """,
        event_id,
    )
    return [row["id"] for row in rows]


async def get_delivery_for_send(tx: Connection, delivery_id: UUID) -> asyncpg.Record | None:
    """The delivery with its webhook's url and secret, locked against a parallel attempt."""
    row: asyncpg.Record | None = await tx.fetchrow(
        """
        SELECT d.id, d.event_id, d.event, d.status, d.attempt, d.payload,
               w.url, w.secret, w.active
        FROM webhook_deliveries d
        JOIN webhooks w ON w.id = d.webhook_id
        WHERE d.id = $1
        FOR UPDATE OF d
        """,
        delivery_id,
    )
    return row


async def record_attempt(
    tx: Connection,
    *,
    delivery_id: UUID,
    status: str,
    status_code: int | None,
    error: str | None,
    next_retry_at: datetime | None,
) -> None:
    await tx.execute(
        """
        UPDATE webhook_deliveries
        SET attempt = attempt + 1,
            status = $2,
            status_code = $3,
            last_error = $4,
            next_retry_at = $5,
            delivered_at = CASE WHEN $2 = 'delivered' THEN now() END,
            updated_at = now()
        WHERE id = $1
        """,
        delivery_id,
        status,
        status_code,
        error,
        next_retry_at,
    )


async def list_deliveries(
    conn: Connection,
    *,
    webhook_id: UUID,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[Delivery]:
    """The webhook's deliveries, newest first, keyset-paginated on (created_at, id)."""
    after_at, after_id = after if after is not None else (None, None)
    rows = await conn.fetch(
        """
        SELECT id, webhook_id, event_id, event, status, status_code, attempt, last_error,
               next_retry_at, delivered_at, created_at
        FROM webhook_deliveries
        WHERE webhook_id = $1
          AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $4
        """,
        webhook_id,
        after_at,
        after_id,
        limit,
    )
    return [Delivery(**dict(row)) for row in rows]
