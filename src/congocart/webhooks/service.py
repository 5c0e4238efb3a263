"""Webhook use cases: subscribe, publish an event, deliver it, list deliveries.

An event's life: `publish` (in the business change's transaction) writes one
pending delivery per subscribed webhook and one `webhooks.fan_out` job; after
the commit, the fan-out gives each delivery a `webhooks.deliver` job; each
attempt signs and POSTs the event and records the outcome on the delivery. A
failed attempt schedules the next one (a new job, due at `next_retry_at`, with
exponential back-off with jitter) until it succeeds or the attempts run out (`dead`).
Delivery is at least once: a worker that dies after the POST and before its
commit sends again, and receivers drop duplicates by the event's `id`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson

from congocart.core import jobs
from congocart.core.db import Connection, Params
from congocart.core.pagination import decode_time_cursor, encode_cursor
from congocart.webhooks import repository
from congocart.webhooks.domain import (
    EVENTS,
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    Delivery,
    NewWebhook,
    WebhookSender,
    WebhookSendFailed,
    check_events,
    check_url,
    is_success,
    retry_delay,
    sign,
)
from congocart.webhooks.errors import WebhookNotFound

FAN_OUT_JOB = "webhooks.fan_out"
DELIVER_JOB = "webhooks.deliver"
MAX_ERROR_CHARS = 500


async def publish(tx: Connection, *, event: str, data: Mapping[str, Any]) -> UUID:
    """Publish `event` in the caller's transaction (one statement, see
    `publish_sql`); returns the event's unique id."""
    event_id = uuid4()
    p = Params()
    sql = publish_sql(p, event_id=event_id, event=event, data=data, only_if="true")
    await tx.execute(f"WITH {sql} SELECT", *p.values)
    return event_id


def publish_sql(
    p: Params, *, event_id: UUID, event: str, data: Mapping[str, Any], only_if: str
) -> str:
    """CTEs of a statement (this feature's or another's) that publish `event`
    under the unique `event_id` when the SQL condition `only_if` holds.

    A pending delivery is written for every subscribed webhook, and, if there
    is any, one outbox job that hands them to the workers once the statement's
    transaction commits (nothing is sent for a rolled-back change). `data`
    must be JSON-serialisable by orjson.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    body = {
        "id": str(event_id),
        "event": event,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": dict(data),
    }
    deliveries = repository.insert_deliveries_sql(
        p,
        name="webhook_deliveries_new",
        event_id=event_id,
        event=event,
        payload=body,
        only_if=only_if,
    )
    fan_out = jobs.enqueue_sql(
        p,
        name="webhook_fan_out",
        kind=FAN_OUT_JOB,
        payload={"event_id": str(event_id)},
        only_if="EXISTS (SELECT 1 FROM webhook_deliveries_new)",
    )
    return f"{deliveries}, {fan_out}"


async def create_webhook(tx: Connection, *, url: str, events: Sequence[str]) -> NewWebhook:
    """Subscribe `url` to `events`; the signing secret is returned this once."""
    secret = f"whsec_{secrets.token_hex(32)}"
    webhook = await repository.insert_webhook(
        tx, url=check_url(url), events=check_events(events), secret=secret
    )
    return NewWebhook(webhook=webhook, secret=secret)


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    items: list[Delivery]
    next_cursor: str | None


async def list_deliveries(
    conn: Connection, *, webhook_id: UUID, limit: int, cursor: str | None
) -> DeliveryPage:
    """The webhook's deliveries, newest first; unknown webhook → `WebhookNotFound`."""
    if not await repository.webhook_exists(conn, webhook_id):
        raise WebhookNotFound
    after = None if cursor is None else decode_time_cursor(cursor)
    rows = await repository.list_deliveries(
        conn, webhook_id=webhook_id, limit=limit + 1, after=after
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1].created_at.isoformat(), str(rows[-1].id)])
    return DeliveryPage(items=rows, next_cursor=next_cursor)


# ---------------------------------------------------------------- the workers' side


def _deliver_job_key(delivery_id: UUID, attempt: int) -> str:
    # One job per attempt of a delivery: a re-run fan-out or retry adds nothing.
    return f"{DELIVER_JOB}:{delivery_id}:{attempt}"


async def fan_out(tx: Connection, *, event_id: UUID) -> int:
    """Give each not-yet-tried delivery of the event its first delivery job."""
    delivery_ids = await repository.pending_deliveries_of_event(tx, event_id)
    for delivery_id in delivery_ids:
        await jobs.enqueue(
            tx,
            kind=DELIVER_JOB,
            payload={"delivery_id": str(delivery_id)},
            dedupe_key=_deliver_job_key(delivery_id, 1),
            max_attempts=3,
        )
    return len(delivery_ids)


async def deliver(
    tx: Connection,
    *,
    delivery_id: UUID,
    sender: WebhookSender,
    delay: Callable[[int], timedelta] = retry_delay,
    max_attempts: int = MAX_ATTEMPTS,
) -> str | None:
    """Make one attempt at a pending delivery; returns its new status (None: nothing to do).

    The delivery row stays locked during the POST (bounded by the sender's
    timeout), so two jobs for one delivery never send side by side. A failure
    is recorded, not raised: the next attempt is its own job, due after
    `delay(attempt)`, and the last failure leaves the delivery `dead`.
    """
    row = await repository.get_delivery_for_send(tx, delivery_id)
    if row is None or row["status"] != "pending":
        return None
    attempt: int = row["attempt"] + 1
    status_code: int | None = None
    error: str | None = None
    if not row["active"]:
        error = "the webhook was deactivated"
    else:
        body = orjson.dumps(row["payload"])
        headers = {
            SIGNATURE_HEADER: sign(row["secret"], timestamp=int(time.time()), body=body),
            "CongoCart-Event": row["event"],
            "CongoCart-Event-Id": str(row["event_id"]),
            "CongoCart-Delivery-Attempt": str(attempt),
        }
        try:
            status_code = await sender.send(url=row["url"], body=body, headers=headers)
        except WebhookSendFailed as exc:
            error = str(exc)[:MAX_ERROR_CHARS]
    if status_code is not None and is_success(status_code):
        status, next_retry_at = "delivered", None
    elif attempt >= max_attempts or not row["active"]:
        status, next_retry_at = "dead", None
    else:
        if error is None:
            error = f"the receiver answered {status_code}"
        status, next_retry_at = "pending", datetime.now(UTC) + delay(attempt)
        await jobs.enqueue(
            tx,
            kind=DELIVER_JOB,
            payload={"delivery_id": str(delivery_id)},
            run_at=next_retry_at,
            dedupe_key=_deliver_job_key(delivery_id, attempt + 1),
            max_attempts=3,
        )
    await repository.record_attempt(
        tx,
        delivery_id=delivery_id,
        status=status,
        status_code=status_code,
        error=error,
        next_retry_at=next_retry_at,
    )
    return status
