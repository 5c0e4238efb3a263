"""Webhooks request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, Field

from congocart.core.schemas import RequestModel, ResponseModel
from congocart.webhooks.domain import (
    EVENTS,
    URL_MAX_LENGTH,
    Delivery,
    NewWebhook,
    check_events,
    check_url,
)


def _url(value: str) -> str:
    return check_url(value)


def _events(value: list[str]) -> list[str]:
    return check_events(value)


class WebhookCreate(RequestModel):
    url: Annotated[
        str,
        Field(max_length=URL_MAX_LENGTH, examples=["https://example.com/hooks/congocart"]),
        AfterValidator(_url),
    ]
    events: Annotated[
        list[str],
        Field(min_length=1, max_length=len(EVENTS) * 2, examples=[["order.paid"]]),
        AfterValidator(_events),
    ] = Field(description=f"Any of: {', '.join(EVENTS)}.")


class WebhookCreated(ResponseModel):
    id: UUID
    url: str
    events: list[str]
    secret: str = Field(
        description="Signs every delivery (`CongoCart-Signature`). Shown only in this response."
    )
    created_at: datetime

    @classmethod
    def of(cls, created: NewWebhook) -> WebhookCreated:
        hook = created.webhook
        return cls(
            id=hook.id,
            url=hook.url,
            events=list(hook.events),
            secret=created.secret,
            created_at=hook.created_at,
        )


class DeliveryRead(ResponseModel):
    event_id: UUID
    event: str = Field(examples=["order.paid"])
    status: str = Field(examples=["delivered"], description="pending, delivered or dead.")
    status_code: int | None = Field(description="The receiver's last answer, if any.")
    attempt: int = Field(description="Attempts made so far.")
    next_retry_at: datetime | None = Field(description="When the next attempt is due.")
    last_error: str | None = None
    delivered_at: datetime | None = None
    created_at: datetime

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryRead:
        return cls(
            event_id=delivery.event_id,
            event=delivery.event,
            status=delivery.status,
            status_code=delivery.status_code,
            attempt=delivery.attempt,
            next_retry_at=delivery.next_retry_at,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )


class DeliveryList(ResponseModel):
    items: list[DeliveryRead]
    next_cursor: str | None = None
