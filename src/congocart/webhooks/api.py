"""Webhook administration: subscribe an endpoint, inspect its deliveries."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path

from congocart.core.db import Conn, Tx
from congocart.core.errors import problem_responses
from congocart.core.pagination import Cursor, Limit
from congocart.identity.dependencies import AdminUser
from congocart.webhooks import service
from congocart.webhooks.errors import WebhookNotFound
from congocart.webhooks.schemas import DeliveryList, DeliveryRead, WebhookCreate, WebhookCreated

# Every route here is admin-only.
router = APIRouter(tags=["webhooks"], responses=problem_responses(403))


@router.post("/admin/webhooks", status_code=201, response_model=WebhookCreated)
async def create_webhook(tx: Tx, admin: AdminUser, body: WebhookCreate) -> WebhookCreated:
    """Subscribe an http(s) endpoint to order events.

    The answer carries the signing `secret`, shown this once. Every delivery is
    a JSON POST `{id, event, created_at, data}` signed with
    `CongoCart-Signature: t=<unix>,v1=<hex hmac_sha256(secret, "<t>.<raw body>")>`;
    deliveries are retried with exponential back-off (jittered) until a 2xx answer, and
    the same event `id` may arrive more than once (drop duplicates by it).
    """
    created = await service.create_webhook(tx, url=body.url, events=body.events)
    return WebhookCreated.of(created)


@router.get("/admin/webhooks/{id}/deliveries", response_model=DeliveryList)
async def list_deliveries(
    conn: Conn,
    admin: AdminUser,
    webhook_id: Annotated[str, Path(alias="id", description="The webhook's id.")],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> DeliveryList:
    """The webhook's deliveries, newest first: event, last answer, attempts, next retry."""
    try:
        hook_id = UUID(webhook_id)
    except ValueError:
        raise WebhookNotFound from None
    page = await service.list_deliveries(conn, webhook_id=hook_id, limit=limit, cursor=cursor)
    return DeliveryList(
        items=[DeliveryRead.of(d) for d in page.items], next_cursor=page.next_cursor
    )
