"""Checkout's background jobs: the reservation sweeper and the voids it queues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from congocart.checkout import service
from congocart.core import jobs
from congocart.payments import service as payments

if TYPE_CHECKING:
    from congocart.core.db import Connection

# Reservations live minutes (`checkout.domain.RESERVATION_TTL`); sweeping twice a
# minute frees a crashed checkout's stock soon after it expires.
SWEEP_EVERY = timedelta(seconds=30)


@jobs.periodic("release_expired_checkouts", every=SWEEP_EVERY)
async def release_expired_checkouts(tx: Connection, job: jobs.Job) -> None:
    """Release reservations left behind by checkouts that never finished."""
    await service.release_expired_reservations(tx, now=datetime.now(UTC))


@jobs.job(service.VOID_PAYMENT_JOB)
async def void_abandoned_payment(tx: Connection, job: jobs.Job) -> None:
    """Void the charge, if any, made for a checkout attempt that was released."""
    await service.void_abandoned_payment(
        tx, gateway=payments.installed_gateway(), payment_key=str(job.payload["payment_key"])
    )
