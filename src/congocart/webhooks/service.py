"""Webhook use cases: subscribe, publish an event, deliver it, list deliveries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from congocart.core import jobs
from congocart.core.db import Connection
from congocart.webhooks import repository

# The job that turns one published event into one delivery job per subscriber.
FAN_OUT_JOB = "webhooks.fan_out"
DELIVER_JOB = "webhooks.deliver"


async def publish(tx: Connection, *, event: str, data: Mapping[str, Any]) -> UUID:
    """Publish `event` in the caller's transaction; returns the event's unique id.

    A pending delivery is written for every subscribed webhook, and one outbox
    job hands them to the workers once the transaction commits (nothing is
    sent for a rolled-back change). At most three statements, however many
    webhooks listen. `data` must be JSON-serialisable by orjson.
    """
    event_id = uuid4()
    body = {
        "id": str(event_id),
        "event": event,
        "created_at": datetime.now(UTC).isoformat(),
        "data": dict(data),
    }
    if await repository.insert_deliveries(tx, event_id=event_id, event=event, payload=body):
        await jobs.enqueue(tx, kind=FAN_OUT_JOB, payload={"event_id": str(event_id)})
    return event_id
