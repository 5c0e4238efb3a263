"""Orders' background jobs."""

from __future__ import annotations

from uuid import UUID

from congocart.core import jobs
from congocart.core.db import Connection
from congocart.orders import service
from congocart.payments import service as payments


@jobs.job(service.REVERSE_PAYMENT_JOB)
async def reverse_payment(tx: Connection, job: jobs.Job) -> None:
    """Carry out a pending refund or void at the gateway (cancel, admin refund).

    The guarantee behind the request's own immediate attempt: keyed by the
    refund id at the provider, and settled with a conditional update, so it
    is harmless when the request got there first. A gateway failure raises,
    and the job is retried with back-off (dead after its last attempt, and
    visible in the admin jobs view).
    """
    await service.settle_refund(
        tx,
        gateway=payments.installed_gateway(),
        refund_id=UUID(job.payload["refund_id"]),
        void=bool(job.payload["void"]),
    )
