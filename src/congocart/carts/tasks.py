"""The carts feature's background jobs: abandoned guest carts expire."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from congocart.carts import service
from congocart.config import get_settings
from congocart.core import jobs

if TYPE_CHECKING:
    from congocart.core.db import Connection

log = structlog.get_logger(__name__)


@jobs.periodic("expire_idle_guest_carts", every=timedelta(hours=1))
async def expire_idle_guest_carts(tx: Connection, job: jobs.Job) -> None:
    """Open guest carts untouched for `CONGOCART_GUEST_CART_TTL_DAYS` (30) become `expired`.

    Idempotent: a second run finds nothing left to expire. A guest cart is only
    reachable by its token, so one nobody used for that long is abandoned; user
    carts stay open, their owner can always come back to them.
    """
    idle_for = timedelta(days=get_settings().guest_cart_ttl_days)
    expired = await service.expire_idle_guest_carts(tx, idle_for=idle_for)
    if expired:
        log.info("guest_carts_expired", count=expired, job_id=str(job.id))
