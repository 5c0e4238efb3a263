"""Webhooks' background jobs: fan an event out to its deliveries, and deliver them."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from congocart.adapters.webhook_sender import HttpxWebhookSender
from congocart.config import get_settings
from congocart.core import jobs
from congocart.core.db import Connection
from congocart.webhooks import service
from congocart.webhooks.domain import RETRY_BASE, WebhookSender, retry_delay

_sender: WebhookSender | None = None
_retry_base: timedelta = RETRY_BASE


def install_sender(sender: WebhookSender | None, *, retry_base: timedelta = RETRY_BASE) -> None:
    """Use `sender` (and a retry base) for this process's deliveries; None: the default.

    The default is an httpx sender that refuses private targets when the
    settings say so (production, unless `CONGOCART_WEBHOOK_BLOCK_PRIVATE_TARGETS`).
    """
    global _sender, _retry_base
    _sender = sender
    _retry_base = retry_base


def _current_sender() -> WebhookSender:
    global _sender
    if _sender is None:
        settings = get_settings()
        _sender = HttpxWebhookSender(block_private_targets=settings.blocks_private_webhook_targets)
    return _sender


def _delay(attempt: int) -> timedelta:
    return retry_delay(attempt, base=_retry_base)


@jobs.job(service.FAN_OUT_JOB)
async def fan_out(tx: Connection, job: jobs.Job) -> None:
    await service.fan_out(tx, event_id=UUID(job.payload["event_id"]))


@jobs.job(service.DELIVER_JOB)
async def deliver(tx: Connection, job: jobs.Job) -> None:
    await service.deliver(
        tx,
        delivery_id=UUID(job.payload["delivery_id"]),
        sender=_current_sender(),
        delay=_delay,
    )
